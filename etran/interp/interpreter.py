"""The reference interpreter: the executable specification of the language.

It runs a checked program (`etran.ir.tir`) on a packet, map contents, a
clock and a CPU number, and returns everything observable: the action, the
packet as it leaves, the maps after, the redirect target, ring-buffer records
and the timers started. Integer operators come from
`etran.ir.semantics`, the same definitions the constant folder uses;
memory is bytes laid out exactly as the kernel lays it out, so results
compare byte for byte with a kernel run.

Map semantics follow the kernel's: a full hash map refuses new keys, array
slots always exist and cannot be deleted, a full queue refuses pushes, SpinLock
and Timer fields read as zero and are not copied by updates. An LRU map evicts
its least recently used entry when full (the kernel's LRU is approximate, so
comparisons keep LRU maps below their capacity).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

from etran.abi import ETH_HLEN, XDP_REDIRECT
from etran.interp.state import (
    RINGBUF_HEADER,
    MapState,
    MapStore,
    Ref,
    RunInput,
    RunResult,
    TimerStarted,
    _clear_special,
    special_ranges,
)
from etran.ir import semantics, tir
from etran.ir.types import ArrayType, BeType, BoolType, IntType, PacketType, StructType

MAX_PACKET_OFFSET = 0xFFFF


class _Signal:
    __slots__ = ("kind", "value")

    def __init__(self, kind: str, value: Any = None) -> None:
        self.kind = kind
        self.value = value


BREAK = _Signal("break")
CONTINUE = _Signal("continue")


class Packet:
    """The frame under the program: its bytes and how far it may grow."""

    __slots__ = ("data", "headroom", "tailroom")

    def __init__(self, data: bytes, headroom: int, tailroom: int) -> None:
        self.data = bytearray(data)
        self.headroom = headroom
        self.tailroom = tailroom


class Machine:
    """One run's state: inputs, packet, maps, and what the run produced."""

    def __init__(self, inp: RunInput, maps: MapStore) -> None:
        self.inp = inp
        self.maps = maps
        self.packet = Packet(inp.packet, inp.headroom, inp.tailroom)
        self.redirect: tuple[str, int] | None = None
        self.ringbuf: dict[str, list[bytes]] = {}
        self.timers: list[TimerStarted] = []


def _read(buf: bytearray, off: int, t: Any) -> int:
    if isinstance(t, IntType):
        return int.from_bytes(buf[off:off + t.size], "little", signed=t.signed)
    if isinstance(t, BeType):
        return int.from_bytes(buf[off:off + t.size], "big")
    if isinstance(t, BoolType):
        return 1 if buf[off] else 0
    raise AssertionError(f"not a scalar: {t}")


def _write(buf: bytearray, off: int, t: Any, v: int) -> None:
    if isinstance(t, IntType):
        buf[off:off + t.size] = (v & ((1 << t.bits) - 1)).to_bytes(t.size, "little")
    elif isinstance(t, BeType):
        buf[off:off + t.size] = (v & ((1 << t.bits) - 1)).to_bytes(t.size, "big")
    elif isinstance(t, BoolType):
        buf[off] = 1 if v else 0
    else:
        raise AssertionError(f"not a scalar: {t}")


class Interpreter:
    def __init__(self, program: tir.Program) -> None:
        self.program = program
        self._expr: dict[type, Callable[[Any, dict[tir.Var, Any], Machine], Any]] = {}
        for cls in get_args(tir.Expr):
            self._expr[cls] = getattr(self, "e_" + cls.__name__)
        self._stmt: dict[type, Callable[[Any, dict[tir.Var, Any], Machine], Any]] = {}
        for cls in get_args(tir.Stmt):
            self._stmt[cls] = getattr(self, "s_" + cls.__name__)

    # ---------------------------------------------------------------- entry points
    def run(self, hook: str | tir.Function, inp: RunInput) -> RunResult:
        """Run an @xdp/@egress/@gen hook on `inp`; `inp.maps` is left untouched."""
        fn = hook if isinstance(hook, tir.Function) else self.program.hook(hook)
        maps = (inp.maps or MapStore(self.program)).copy()
        m = Machine(inp, maps)
        args: list[Any] = [m.packet] if fn.hook != "timer" else []
        result = self.call(fn, args, m)
        return RunResult(result, bytes(m.packet.data), maps, m.redirect, m.ringbuf, m.timers)

    def run_timer(self, handler: str | tir.Function, key: bytes, inp: RunInput) -> RunResult:
        """Fire a @timer handler for the map entry with `key`, as the kernel would."""
        fn = handler if isinstance(handler, tir.Function) else self.program.hook(handler)
        assert fn.timer_field is not None
        maps = (inp.maps or MapStore(self.program)).copy()
        m = Machine(inp, maps)
        st, _ = fn.timer_field
        owner = next(mp for mp in self.program.maps if mp.value is st)
        state = maps[owner.name]
        value = state.entries.get(key)
        if value is None:
            raise KeyError(f"{owner.name} has no entry with key {key.hex()}")
        key_t = fn.params[0].type
        key_arg: Any = Ref(bytearray(key)) if isinstance(key_t, StructType) else _read(bytearray(key), 0, key_t)
        self.call(fn, [key_arg, Ref(value, 0, owner.name, key)], m)
        return RunResult(None, bytes(m.packet.data), maps, m.redirect, m.ringbuf, m.timers)

    def call(self, fn: tir.Function, args: list[Any], m: Machine) -> Any:
        env: dict[tir.Var, Any] = {}
        params = fn.params
        if fn.hook in ("xdp", "egress", "gen"):
            env[params[0]] = args[0]
        else:
            for p, a in zip(params, args):
                env[p] = a
        sig = self.block(fn.body, env, m)
        if isinstance(sig, _Signal) and sig.kind == "return":
            return sig.value
        return None

    # ---------------------------------------------------------------- statements
    def block(self, body: tuple[tir.Stmt, ...], env: dict[tir.Var, Any], m: Machine) -> Any:
        stmt = self._stmt
        for s in body:
            sig = stmt[type(s)](s, env, m)
            if sig is not None:
                return sig
        return None

    def s_Assign(self, s: tir.Assign, env: dict[tir.Var, Any], m: Machine) -> None:
        env[s.var] = self.expr(s.value, env, m)

    def s_Store(self, s: tir.Store, env: dict[tir.Var, Any], m: Machine) -> None:
        t = s.place.type
        if s.op is None:
            # Python's order: the value, then the target.
            value = self.expr(s.value, env, m)
            loc = self.place(s.place, env, m)
            if loc is not None:  # an index out of range: the write is dropped
                _write(loc.buf, loc.off, t, value)
            return
        # `x.f op= v`: the target, its current value, then v.
        loc = self.place(s.place, env, m)
        cur = _read(loc.buf, loc.off, t) if loc is not None else 0
        value = self.expr(s.value, env, m)
        if loc is None:
            return
        vt = t.value_type if isinstance(t, BeType) else t
        assert isinstance(vt, IntType)  # the checker allows `op=` on integers only
        cbits = s.value.type.bits if isinstance(s.value.type, IntType) else 64
        _write(loc.buf, loc.off, t, semantics.binary(s.op, cur, value, vt, cbits))

    def s_CopyStruct(self, s: tir.CopyStruct, env: dict[tir.Var, Any], m: Machine) -> None:
        src = self.expr(s.value, env, m)
        dst = self.place(s.place, env, m)
        assert dst is not None  # an array of structs takes only in-range constant indexes
        size = s.place.type.size  # type: ignore[union-attr]
        data = bytes(src.buf[src.off:src.off + size])
        dst.buf[dst.off:dst.off + size] = data

    def s_ExprStmt(self, s: tir.ExprStmt, env: dict[tir.Var, Any], m: Machine) -> None:
        self.expr(s.value, env, m)

    def s_If(self, s: tir.If, env: dict[tir.Var, Any], m: Machine) -> Any:
        if self.expr(s.test, env, m):
            return self.block(s.body, env, m)
        return self.block(s.orelse, env, m)

    def s_Loop(self, s: tir.Loop, env: dict[tir.Var, Any], m: Machine) -> Any:
        t = s.var.type
        assert isinstance(t, IntType) and isinstance(s.start, tir.Const)
        const_stop = isinstance(s.stop, tir.Const)
        stop = None if const_stop else self.expr(s.stop, env, m)  # once, as in Python
        for k in range(s.bound):
            i = t.wrap(s.start.value + k * s.step)
            if stop is not None and not (i < stop if s.step > 0 else i > stop):
                break
            env[s.var] = i
            sig = self.block(s.body, env, m)
            if sig is BREAK:
                break
            if sig is CONTINUE or sig is None:
                continue
            return sig
        return None

    def s_Break(self, s: tir.Break, env: dict[tir.Var, Any], m: Machine) -> Any:
        return BREAK

    def s_Continue(self, s: tir.Continue, env: dict[tir.Var, Any], m: Machine) -> Any:
        return CONTINUE

    def s_Return(self, s: tir.Return, env: dict[tir.Var, Any], m: Machine) -> Any:
        return _Signal("return", None if s.value is None else self.expr(s.value, env, m))

    def s_Locked(self, s: tir.Locked, env: dict[tir.Var, Any], m: Machine) -> Any:
        self.place(s.lock, env, m)
        return self.block(s.body, env, m)  # one CPU at a time: the lock never contends

    # ---------------------------------------------------------------- places
    def place(self, p: tir.Place, env: dict[tir.Var, Any], m: Machine) -> Ref | None:
        base: Ref = self.expr(p.base, env, m)
        if isinstance(p, tir.FieldPlace):
            return base.at(p.field.offset)
        idx = self.expr(p.index, env, m)
        if not 0 <= idx < p.length:
            return None
        return base.at(idx * p.elem.size)  # type: ignore[union-attr]

    # ---------------------------------------------------------------- expressions
    def expr(self, e: tir.Expr, env: dict[tir.Var, Any], m: Machine) -> Any:
        return self._expr[type(e)](e, env, m)

    def e_Const(self, e: tir.Const, env: Any, m: Machine) -> int:
        return e.value

    def e_VarRef(self, e: tir.VarRef, env: dict[tir.Var, Any], m: Machine) -> Any:
        return env[e.var]

    def e_Unary(self, e: tir.Unary, env: Any, m: Machine) -> int:
        return semantics.unary(e.op, self.expr(e.operand, env, m), e.type)

    def e_Not(self, e: tir.Not, env: Any, m: Machine) -> int:
        return 0 if self.expr(e.operand, env, m) else 1

    def e_Binary(self, e: tir.Binary, env: Any, m: Machine) -> int:
        a = self.expr(e.left, env, m)
        b = self.expr(e.right, env, m)
        rt = e.right.type
        return semantics.binary(e.op, a, b, e.type, rt.bits if isinstance(rt, IntType) else 64)

    def e_Compare(self, e: tir.Compare, env: Any, m: Machine) -> int:
        return int(semantics.compare(e.op, self.expr(e.left, env, m), self.expr(e.right, env, m)))

    def e_Logic(self, e: tir.Logic, env: Any, m: Machine) -> int:
        left = self.expr(e.left, env, m)
        if e.op == "and":
            return 1 if left and self.expr(e.right, env, m) else 0
        return 1 if left or self.expr(e.right, env, m) else 0

    def e_Cond(self, e: tir.Cond, env: Any, m: Machine) -> Any:
        return self.expr(e.body if self.expr(e.test, env, m) else e.orelse, env, m)

    def e_Convert(self, e: tir.Convert, env: Any, m: Machine) -> int:
        v = self.expr(e.operand, env, m)
        t = e.type
        if isinstance(t, BoolType):
            return 1 if v else 0
        assert isinstance(t, IntType)
        return t.wrap(v)

    def e_Load(self, e: tir.Load, env: Any, m: Machine) -> int:
        loc = self.place(e.place, env, m)
        if loc is None:
            return 0
        return _read(loc.buf, loc.off, e.place.type)

    def e_AddrOf(self, e: tir.AddrOf, env: Any, m: Machine) -> Ref | None:
        return self.place(e.place, env, m)

    def e_IsNone(self, e: tir.IsNone, env: Any, m: Machine) -> int:
        v = self.expr(e.operand, env, m)
        return int((v is None) != e.negate)

    def e_NewStruct(self, e: tir.NewStruct, env: Any, m: Machine) -> Ref:
        buf = bytearray(e.struct.size)
        for f, v in e.inits:
            val = self.expr(v, env, m)
            if isinstance(f.type, (StructType, ArrayType)):
                buf[f.offset:f.offset + f.type.size] = val.buf[val.off:val.off + f.type.size]
            else:
                _write(buf, f.offset, f.type, val)
        return Ref(buf)

    def e_Call(self, e: tir.Call, env: Any, m: Machine) -> Any:
        args = [self.expr(a, env, m) for a in e.args]
        return self.call(e.func, args, m)

    def e_Builtin(self, e: tir.Builtin, env: Any, m: Machine) -> int:
        name = e.name
        if name == "now_ns":
            return m.inp.now_ns
        if name == "cpu_id":
            return m.inp.cpu
        if name == "random_u32":
            return m.inp.random_u32
        if name == "pkt_len":
            return len(m.packet.data)
        if name == "rx_queue":
            return m.inp.rx_queue
        if name == "ifindex":
            return m.inp.ifindex
        raise AssertionError(name)

    def e_MinMax(self, e: tir.MinMax, env: Any, m: Machine) -> int:
        vals: list[int] = [self.expr(a, env, m) for a in e.args]
        return min(vals) if e.op == "min" else max(vals)

    # ---------------------------------------------------------------- maps
    def key_bytes(self, key: tir.Expr, env: Any, m: Machine) -> bytes:
        return self._key_of(self.expr(key, env, m), key.type)

    @staticmethod
    def _key_of(v: Any, t: Any) -> bytes:
        if isinstance(t, StructType):
            return bytes(v.buf[v.off:v.off + t.size])
        buf = bytearray(t.size)
        _write(buf, 0, t, v)
        return bytes(buf)

    def e_MapGet(self, e: tir.MapGet, env: Any, m: Machine) -> Ref | None:
        k = self.key_bytes(e.key, env, m)
        st = m.maps[e.map.name]
        if e.map.is_array:
            idx = int.from_bytes(k, "little")
            if idx >= e.map.max_entries:
                return None
            slot = st.array_slot(idx)
        else:
            slot = st.entries.get(k)
            if slot is None:
                return None
            if e.map.kind == "LruHashMap":
                st.entries.move_to_end(k)
        if isinstance(slot, list):
            slot = slot[m.inp.cpu]
        return Ref(slot, 0, e.map.name, k)

    def e_MapSet(self, e: tir.MapSet, env: Any, m: Machine) -> int:
        # Arguments left to right; a struct key is a reference, read when the helper runs.
        key = self.expr(e.key, env, m)
        v = self.expr(e.value, env, m)
        k = self._key_of(key, e.key.type)
        assert e.map.value is not None
        size = e.map.value.size
        new = bytes(v.buf[v.off:v.off + size])
        st = m.maps[e.map.name]
        if e.map.is_array:
            idx = int.from_bytes(k, "little")
            if idx >= e.map.max_entries or e.flags == 1:
                return 0
            slot = st.array_slot(idx)
            _update(slot[m.inp.cpu] if isinstance(slot, list) else slot, new, e.map.value)
            return 1
        exists = k in st.entries
        if (e.flags == 1 and exists) or (e.flags == 2 and not exists):
            return 0
        if exists:
            slot = st.entries[k]
            if isinstance(slot, list):  # per-CPU: this CPU's value is updated in place
                _update(slot[m.inp.cpu], new, e.map.value)
            else:
                # The kernel links in a new element (SpinLock and Timer start afresh): a
                # reference taken before the update keeps pointing at the old one.
                st.entries[k] = bytearray(_clear_special(new, e.map.value))
            if e.map.kind == "LruHashMap":
                st.entries.move_to_end(k)
            return 1
        if len(st.entries) >= e.map.max_entries:
            if e.map.kind != "LruHashMap":
                return 0
            st.entries.popitem(last=False)
        fresh = bytearray(size)
        _update(fresh, new, e.map.value)
        if e.map.is_percpu:
            # A new per-CPU entry: this CPU gets the value, the others start zeroed.
            vals = [bytearray(size) for _ in range(m.maps.ncpu)]
            vals[m.inp.cpu] = fresh
            st.entries[k] = vals
        else:
            st.entries[k] = fresh
        return 1

    def e_MapDelete(self, e: tir.MapDelete, env: Any, m: Machine) -> int:
        k = self.key_bytes(e.key, env, m)
        st = m.maps[e.map.name]
        if k in st.entries:
            del st.entries[k]
            return 1
        return 0

    def e_QueuePush(self, e: tir.QueuePush, env: Any, m: Machine) -> int:
        v = self.expr(e.value, env, m)
        st = m.maps[e.map.name]
        if len(st.queue) >= e.map.max_entries:
            return 0
        assert e.map.value is not None
        st.queue.append(bytes(v.buf[v.off:v.off + e.map.value.size]))
        return 1

    def e_QueuePop(self, e: tir.QueuePop, env: Any, m: Machine) -> Ref | None:
        st = m.maps[e.map.name]
        if not st.queue:
            return None
        return Ref(bytearray(st.queue.pop(0)))

    def e_RingOutput(self, e: tir.RingOutput, env: Any, m: Machine) -> int:
        v = self.expr(e.value, env, m)
        assert e.map.value is not None
        size = e.map.value.size
        st = m.maps[e.map.name]
        need = RINGBUF_HEADER + (size + 7) // 8 * 8
        # The kernel keeps its producer less than a whole ring ahead of the consumer (one
        # byte short of it): a ring of N bytes never holds N bytes of records
        if st.ring_used + need >= e.map.max_entries:
            return 0
        st.ring_used += need
        m.ringbuf.setdefault(e.map.name, []).append(bytes(v.buf[v.off:v.off + size]))
        return 1

    def e_Redirect(self, e: tir.Redirect, env: Any, m: Machine) -> int:
        key = self.expr(e.key, env, m)
        fallback = self.expr(e.fallback, env, m)
        m.redirect = (e.map.name, key)
        st = m.maps[e.map.name]
        if key.to_bytes(4, "little") in st.entries and key < e.map.max_entries:
            return XDP_REDIRECT
        return fallback  # type: ignore[no-any-return]

    def e_Atomic(self, e: tir.Atomic, env: Any, m: Machine) -> int:
        loc = self.place(e.place, env, m)
        expected = None if e.expected is None else self.expr(e.expected, env, m)
        v = self.expr(e.value, env, m)
        assert loc is not None
        old = _read(loc.buf, loc.off, e.type)
        if e.op == "add":
            _write(loc.buf, loc.off, e.type, e.type.wrap(old + v))
        elif e.op == "xchg" or old == expected:
            _write(loc.buf, loc.off, e.type, v)
        return old

    def e_TimerStart(self, e: tir.TimerStart, env: Any, m: Machine) -> int:
        assert isinstance(e.timer, tir.FieldPlace)
        base = self.expr(e.timer.base, env, m)
        delay = self.expr(e.delay, env, m)
        m.timers.append(TimerStarted(e.map.name, base.key, e.timer.field.name, delay))
        return 1

    def e_TimerCancel(self, e: tir.TimerCancel, env: Any, m: Machine) -> int:
        self.place(e.timer, env, m)
        return 0  # timers are recorded, never armed, in a test run: nothing to cancel

    # ---------------------------------------------------------------- packets
    def e_PacketHeader(self, e: tir.PacketHeader, env: Any, m: Machine) -> Ref | None:
        off = self.expr(e.offset, env, m)
        if off > MAX_PACKET_OFFSET - e.header.size or off + e.header.size > len(m.packet.data):
            return None
        return Ref(m.packet.data, off)

    def e_PacketChecksum(self, e: tir.PacketChecksum, env: Any, m: Machine) -> int:
        off = self.expr(e.offset, env, m)
        length = self.expr(e.length, env, m)
        seed = self.expr(e.seed, env, m)
        return semantics.checksum(bytes(m.packet.data), off, length, seed)

    def e_PacketResize(self, e: tir.PacketResize, env: Any, m: Machine) -> int:
        delta = self.expr(e.delta, env, m)
        p = m.packet
        new_len = len(p.data) + delta
        if new_len < ETH_HLEN:
            return 0
        if e.where == "head":
            if delta > p.headroom:
                return 0
            p.headroom -= delta
            p.data = bytearray(delta) + p.data if delta >= 0 else p.data[-delta:]
        else:
            if delta > p.tailroom:
                return 0
            p.tailroom -= delta
            p.data = p.data + bytearray(delta) if delta >= 0 else p.data[:new_len]
        return 1


def _update(slot: bytearray, new: bytes, value_type: StructType | None) -> None:
    """Copy a value into a map slot, leaving the kernel-owned SpinLock/Timer bytes alone."""
    ranges = special_ranges(value_type)
    if not ranges:
        slot[:] = new
        return
    keep = [(lo, hi, bytes(slot[lo:hi])) for lo, hi in ranges]
    slot[:] = new
    for lo, hi, old in keep:
        slot[lo:hi] = old


def run(program: tir.Program, hook: str, inp: RunInput) -> RunResult:
    return Interpreter(program).run(hook, inp)


__all__ = ["Interpreter", "MapState", "MapStore", "PacketType", "RunInput", "RunResult", "run"]

"""EXPERIMENT (not wired into the pipeline): estimate the kernel verifier's `processed` count
by replaying the verifier's own exploration over the *compiled* BPF instructions.

Why: the source-level model (`etran.analysis.budget`) cannot see that the verifier prunes
the states of a loop body's branches when they rejoin (states_equal with liveness and
precision), so programs whose loops contain branches are estimated at 10-100x the kernel's
count. This module walks the instructions the kernel walks, the way it walks them
(kernel/bpf/verifier.c, 6.18):

* depth first: a conditional jump whose outcome is not known pushes the *taken* branch and
  continues with the fall-through; a path ends at `exit` (or when pruned) and the most
  recently pushed branch is popped;
* every instruction visited counts one (`insn_processed`), including the visit that is pruned;
* prune points are the kernel's: conditional jumps, jump targets, the instruction after a
  call, callback-calling calls; at a prune point the state is compared with the checkpoints
  stored there whose exploration is finished (`branches == 0`); a checkpoint is stored only
  under the kernel's heuristic (>= 2 jumps and >= 8 instructions since the last one, or a
  history longer than 40 entries), is evicted after `miss > 3 * hit + 3`, and loop states
  still being explored only suppress new checkpoints (< 20 jumps and < 100 insns);
* abstract values follow the kernel's kinds (scalar with tnum + unsigned/signed 64-bit
  ranges, pointers to ctx/packet/packet end/map value (or null)/stack/map/ringbuf memory),
  packet ranges learnt from comparisons with `data_end`, null checks by id, spills and fills
  per stack byte (STACK_SPILL/MISC/ZERO, narrow spills of scalars).

Where the model cannot be sure it is at least as strict as the kernel it chooses the side
that explores more (never less):

* branches are decided only from the model's own scalar knowledge, which is (meant to be)
  no more precise than the kernel's, so the model explores at least the kernel's branches;
* state comparison uses register liveness (a superset of the kernel's `compute_live_registers`:
  helper calls read r1-r5) but no stack liveness (every stack slot is compared);
* precision: a scalar is compared (range and tnum containment) unless a backward static
  analysis shows that no path from that point can make it precise in the kernel
  (conditional-jump operands, pointer arithmetic, helper arguments, spills to the stack,
  return values are the sinks; everything spilled counts as precise); a scalar whose value
  the model knows less well than the kernel may ("approx": division, multiplication of wide
  values, variable shifts, helper results, loads from read-only data) is never matched
  when it must be compared.

`estimate_object` returns the count times `MARGIN`; `explore` returns the raw count and
statistics. Anything the model does not know (BPF-to-BPF calls, kfuncs, iterators)
raises `Unsupported`.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from etran.backend.objfile import LD_IMM64, read_object

MARGIN = 1.25   # measured: largest kernel/replay ratio 1.24 over 1,192 generated hooks (seeds 9101, 9102)
LIMIT = 1_000_000
U64 = (1 << 64) - 1
U32 = (1 << 32) - 1
S64MIN, S64MAX = -(1 << 63), (1 << 63) - 1
MAX_PACKET_OFF = 0xFFFF
AT_PKT_END, BEYOND_PKT_END = -1, -2


class Unsupported(Exception):
    pass


# ---------------------------------------------------------------- scalars (tnum + ranges)

def _s64(x: int) -> int:
    x &= U64
    return x - (1 << 64) if x >> 63 else x


def _s32(x: int) -> int:
    x &= U32
    return x - (1 << 32) if x >> 31 else x


@dataclass(frozen=True, slots=True)
class Reg:
    t: str                      # "none", "scalar", "ctx", "pkt", "pkt_meta", "pkt_end", "map_ptr",
                                # "map_value", "map_value_or_null", "stack", "mem", "mem_or_null",
                                # "func", "map_key"
    umin: int = 0
    umax: int = U64
    smin: int = S64MIN
    smax: int = S64MAX
    tv: int = 0
    tm: int = U64
    off: int = 0
    rng: int = 0
    id: int = 0
    mp: str = ""
    approx: bool = False

    @property
    def const(self) -> bool:
        return self.tm == 0

    def var_equal(self, o: Reg) -> bool:
        return (self.umin, self.umax, self.smin, self.smax, self.tv, self.tm) == \
            (o.umin, o.umax, o.smin, o.smax, o.tv, o.tm)


NOT_INIT = Reg("none")


def ptr(t: str, **kw) -> Reg:
    """A pointer with a known (zero) variable part."""
    return Reg(t, 0, 0, 0, 0, 0, 0, **kw)

UNKNOWN = Reg("scalar")


def known(v: int, approx: bool = False) -> Reg:
    v &= U64
    return Reg("scalar", v, v, _s64(v), _s64(v), v, 0, approx=approx)


def _sync(t: str, umin: int, umax: int, smin: int, smax: int, tv: int, tm: int, approx: bool,
          **kw) -> Reg:
    """reg_bounds_sync, reduced to 64 bits: tnum <-> u64 <-> s64."""
    for _ in range(2):
        umin, umax = max(umin, tv), min(umax, tv | tm)
        if not tm >> 63:
            smin, smax = max(smin, _s64(tv)), min(smax, _s64(tv | tm))
        else:
            smin = max(smin, _s64(tv | (1 << 63)))
            smax = min(smax, _s64((tv | tm) & ~(1 << 63)))
        if umin >> 63 == umax >> 63:
            smin, smax = max(smin, _s64(umin)), min(smax, _s64(umax))
        if smin >= 0 or smax < 0:
            umin, umax = max(umin, smin & U64), min(umax, smax & U64)
        if umin > umax or smin > smax:
            break
        chi = umin ^ umax
        bits = chi.bit_length()
        rm = (1 << bits) - 1
        rv = umin & ~rm & U64
        v = tv | rv
        mu = tm & rm
        tv, tm = v & ~mu & U64, mu
    if umin > umax or smin > smax:  # infeasible branch: keep something well formed
        umin, umax, smin, smax, tv, tm = 0, U64, S64MIN, S64MAX, 0, U64
    if umin == umax:
        tv, tm, smin, smax = umin, 0, _s64(umin), _s64(umin)
    return Reg(t, umin, umax, smin, smax, tv, tm, approx=approx, **kw)


def scalar(umin: int = 0, umax: int = U64, smin: int = S64MIN, smax: int = S64MAX,
           tv: int = 0, tm: int = U64, approx: bool = False) -> Reg:
    return _sync("scalar", umin, umax, smin, smax, tv, tm, approx)


def sized_unknown(size: int, approx: bool = False) -> Reg:
    if size >= 8:
        return Reg("scalar", approx=approx)
    m = (1 << (8 * size)) - 1
    return Reg("scalar", 0, m, 0, m, 0, m, approx=approx)


def sign_unknown(size: int) -> Reg:
    b = 8 * size
    return scalar(smin=-(1 << (b - 1)), smax=(1 << (b - 1)) - 1, approx=True)


def zext32(r: Reg) -> Reg:
    """The low 32 bits of a scalar, zero-extended (coerce_reg_to_size(4))."""
    if r.const:
        return known(r.tv & U32, r.approx)
    if r.umax <= U32:
        return r if r.id == 0 else Reg(**{**_fields(r), "id": 0})
    return _sync("scalar", 0, U32, 0, U32, r.tv & U32, r.tm & U32, r.approx)


def _fields(r: Reg) -> dict:
    return {k: getattr(r, k) for k in Reg.__slots__}


def _range_from_tnum(tv: int, tm: int, approx: bool) -> Reg:
    return _sync("scalar", 0, U64, S64MIN, S64MAX, tv, tm, approx)


def alu_scalar(op: int, a: Reg, b: Reg, w32: bool) -> Reg:
    approx = a.approx or b.approx
    if w32:
        a, b = zext32(a), zext32(b)
        bits, mask = 32, U32
    else:
        bits, mask = 64, U64
    if op in (0x30, 0x90):
        # is_safe_to_compute_dst_reg_range(): 6.18 never tracks division or modulo, not
        # even of two constants: the result is unknown
        return _wide(scalar(0, mask, approx=approx), w32)
    if a.const and b.const:
        x, y = a.tv, b.tv
        if op == 0x00: v = x + y
        elif op == 0x10: v = x - y
        elif op == 0x20: v = x * y
        elif op == 0x30: v = x // y if y else 0
        elif op == 0x90: v = x % y if y else x
        elif op == 0x40: v = x | y
        elif op == 0x50: v = x & y
        elif op == 0xA0: v = x ^ y
        elif op == 0x60: v = x << (y & (bits - 1))
        elif op == 0x70: v = x >> (y & (bits - 1))
        elif op == 0xC0:
            sx = _s32(x) if w32 else _s64(x)
            v = sx >> (y & (bits - 1))
        else:
            return _wide(sized_unknown(4 if w32 else 8, True), w32)
        return known(v & mask, approx)
    r: Reg
    if op == 0x00:  # add
        tv, tm = _tnum_add(a.tv, a.tm, b.tv, b.tm, mask)
        umin, umax = (a.umin + b.umin, a.umax + b.umax) if a.umax + b.umax <= mask else (0, mask)
        if w32:
            r = _sync("scalar", umin, umax, 0, U32, tv, tm, approx)
        else:
            smin, smax = a.smin + b.smin, a.smax + b.smax
            if smin < S64MIN or smax > S64MAX:
                smin, smax = S64MIN, S64MAX
            r = _sync("scalar", umin, umax, smin, smax, tv, tm, approx)
    elif op == 0x10:  # sub
        tv, tm = _tnum_sub(a.tv, a.tm, b.tv, b.tm, mask)
        umin, umax = (a.umin - b.umax, a.umax - b.umin) if a.umin >= b.umax else (0, mask)
        if w32:
            r = _sync("scalar", umin, umax, 0, U32, tv, tm, approx)
        else:
            smin, smax = a.smin - b.smax, a.smax - b.smin
            if smin < S64MIN or smax > S64MAX:
                smin, smax = S64MIN, S64MAX
            r = _sync("scalar", umin, umax, smin, smax, tv, tm, approx)
    elif op == 0x20:  # mul
        if a.umax <= U32 and b.umax <= U32 and a.umax * b.umax <= mask:
            r = scalar(a.umin * b.umin, a.umax * b.umax, approx=approx)
        else:
            r = scalar(0, mask, approx=True)
    elif op == 0x50:  # and
        tv, tm = a.tv & b.tv, (a.tm | a.tv) & (b.tm | b.tv) & ~(a.tv & b.tv) & mask
        r = _sync("scalar", tv, min(a.umax, b.umax), S64MIN, S64MAX, tv, tm, approx)
    elif op == 0x40:  # or
        tv = a.tv | b.tv
        tm = (a.tm | b.tm) & ~tv & mask
        r = _sync("scalar", max(a.umin, b.umin), tv | tm, S64MIN, S64MAX, tv, tm, approx)
    elif op == 0xA0:  # xor
        tv, tm = (a.tv ^ b.tv) & ~(a.tm | b.tm) & mask, (a.tm | b.tm) & mask
        r = _sync("scalar", tv, tv | tm, S64MIN, S64MAX, tv, tm, approx)
    elif op in (0x60, 0x70, 0xC0) and b.const:
        k = b.tv
        if k >= bits:
            return _wide(scalar(0, mask, approx=True), w32)
        if op == 0x60:
            tv, tm = (a.tv << k) & mask, (a.tm << k) & mask
            if (a.umax << k) <= mask:
                r = _sync("scalar", a.umin << k, a.umax << k, S64MIN, S64MAX, tv, tm, approx)
            else:
                r = _sync("scalar", 0, mask, S64MIN, S64MAX, tv, tm, approx)
        elif op == 0x70:
            r = _sync("scalar", a.umin >> k, a.umax >> k, S64MIN, S64MAX, a.tv >> k, a.tm >> k, approx)
        else:
            if w32:
                r = scalar(0, U32, approx=True)
            else:
                sv = _s64(a.tv) >> k
                sm = _s64(a.tm) >> k if a.tm >> 63 else a.tm >> k
                r = _sync("scalar", 0, U64, a.smin >> k, a.smax >> k, sv & U64, sm & U64, approx)
    else:  # div, mod, variable shifts
        if op in (0x30, 0x90):   # 6.18 does not track division or modulo: unknown
            r = scalar(0, mask, approx=approx)
        else:
            r = scalar(0, mask, approx=True)
    return _wide(r, w32)


def _wide(r: Reg, w32: bool) -> Reg:
    if not w32:
        return r
    if r.umax <= U32:
        return r
    return _sync("scalar", 0, U32, 0, U32, r.tv & U32, r.tm & U32, r.approx)


def _tnum_add(av: int, am: int, bv: int, bm: int, mask: int) -> tuple[int, int]:
    sm = am + bm
    sv = av + bv
    sigma = sm + sv
    chi = sigma ^ sv
    mu = chi | am | bm
    return (sv & ~mu) & mask, mu & mask


def _tnum_sub(av: int, am: int, bv: int, bm: int, mask: int) -> tuple[int, int]:
    dv = (av - bv) & mask
    alpha = (dv + am) & mask
    beta = (dv - bm) & mask
    chi = alpha ^ beta
    mu = chi | am | bm
    return (dv & ~mu) & mask, mu & mask


# ---------------------------------------------------------------- branch logic

_JEQ, _JGT, _JGE, _JSET, _JNE, _JSGT, _JSGE, _JLT, _JLE, _JSLT, _JSLE = \
    0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xA0, 0xB0, 0xC0, 0xD0
_FLIP = {_JEQ: _JEQ, _JNE: _JNE, _JSET: _JSET, _JGT: _JLT, _JLT: _JGT, _JGE: _JLE, _JLE: _JGE,
         _JSGT: _JSLT, _JSLT: _JSGT, _JSGE: _JSLE, _JSLE: _JSGE}
_NEG = {_JEQ: _JNE, _JNE: _JEQ, _JGT: _JLE, _JLE: _JGT, _JGE: _JLT, _JLT: _JGE,
        _JSGT: _JSLE, _JSLE: _JSGT, _JSGE: _JSLT, _JSLT: _JSGE}


def _view32(r: Reg) -> tuple[int, int, int, int, int, int]:
    """(umin, umax, smin, smax, tv, tm) of the low 32 bits."""
    tv, tm = r.tv & U32, r.tm & U32
    if r.umax <= U32:
        umin, umax = r.umin, r.umax
    else:
        umin, umax = tv, tv | tm
    if umax <= 0x7FFFFFFF:
        smin, smax = umin, umax
    elif not (tm >> 31):
        smin, smax = _s32(tv), _s32(tv | tm)
    else:
        smin, smax = -(1 << 31), (1 << 31) - 1
    return umin, umax, smin, smax, tv, tm


def _view64(r: Reg) -> tuple[int, int, int, int, int, int]:
    return r.umin, r.umax, r.smin, r.smax, r.tv, r.tm


def branch_taken(a: Reg, b: Reg, op: int, w32: bool) -> int:
    """1 taken, 0 not taken, -1 unknown (is_scalar_branch_taken, on the model's ranges)."""
    au, AU, as_, AS, atv, atm = (_view32 if w32 else _view64)(a)
    bu, BU, bs, BS, btv, btm = (_view32 if w32 else _view64)(b)
    if op == _JEQ or op == _JNE:
        eq = -1
        if atm == 0 and btm == 0:
            eq = int(atv == btv)
        elif AU < bu or BU < au or AS < bs or BS < as_ or ((atv ^ btv) & ~(atm | btm)):
            eq = 0
        if eq < 0:
            return -1
        return eq if op == _JEQ else 1 - eq
    if op == _JSET:
        if atv & btv:
            return 1
        if not ((atv | atm) & (btv | btm)):
            return 0
        return -1
    if op == _JGT:
        return 1 if au > BU else 0 if AU <= bu else -1
    if op == _JGE:
        return 1 if au >= BU else 0 if AU < bu else -1
    if op == _JLT:
        return 1 if AU < bu else 0 if au >= BU else -1
    if op == _JLE:
        return 1 if AU <= bu else 0 if au > BU else -1
    if op == _JSGT:
        return 1 if as_ > BS else 0 if AS <= bs else -1
    if op == _JSGE:
        return 1 if as_ >= BS else 0 if AS < bs else -1
    if op == _JSLT:
        return 1 if AS < bs else 0 if as_ >= BS else -1
    if op == _JSLE:
        return 1 if AS <= bs else 0 if as_ > BS else -1
    return -1


def refine(a: Reg, b: Reg, op: int, w32: bool) -> tuple[Reg, Reg]:
    """Bounds of a and b when `a op b` holds (regs_refine_cond_op, 64-bit part). For a
    32-bit comparison only values known to fit in 32 bits are refined."""
    if w32 and (a.umax > U32 or b.umax > U32):
        return a, b
    if op == _JEQ:
        n = _intersect(a, b)
        return n, n
    if op == _JNE:
        if b.const:
            a = _drop_endpoint(a, b.tv)
        if a.const:
            b = _drop_endpoint(b, a.tv)
        return a, b
    if op == _JSET:
        return a, b
    if op in (_JLT, _JLE, _JSLT, _JSLE):
        b2, a2 = refine(b, a, _FLIP[op], w32)
        return a2, b2
    if op == _JGT:    # a > b
        return _clamp(a, umin=b.umin + 1), _clamp(b, umax=a.umax - 1)
    if op == _JGE:
        return _clamp(a, umin=b.umin), _clamp(b, umax=a.umax)
    if op == _JSGT:
        return _clamp(a, smin=b.smin + 1), _clamp(b, smax=a.smax - 1)
    if op == _JSGE:
        return _clamp(a, smin=b.smin), _clamp(b, smax=a.smax)
    return a, b


def _clamp(r: Reg, umin: int | None = None, umax: int | None = None,
           smin: int | None = None, smax: int | None = None) -> Reg:
    if r.t != "scalar":
        return r
    nu = max(r.umin, umin) if umin is not None else r.umin
    nU = min(r.umax, umax) if umax is not None else r.umax
    ns = max(r.smin, smin) if smin is not None else r.smin
    nS = min(r.smax, smax) if smax is not None else r.smax
    if (nu, nU, ns, nS) == (r.umin, r.umax, r.smin, r.smax):
        return r
    if nu > nU or ns > nS:
        return r
    return _sync("scalar", nu, nU, ns, nS, r.tv, r.tm, r.approx, id=r.id)


def _intersect(a: Reg, b: Reg) -> Reg:
    if a.t != "scalar":
        return a
    if b.const:
        return Reg(**{**_fields(known(b.tv, a.approx or b.approx)), "id": a.id})
    r = _clamp(a, umin=b.umin, umax=b.umax, smin=b.smin, smax=b.smax)
    return r


def _drop_endpoint(r: Reg, v: int) -> Reg:
    if r.t != "scalar" or r.const:
        return r
    if r.umin == v:
        return _clamp(r, umin=v + 1)
    if r.umax == v:
        return _clamp(r, umax=v - 1)
    sv = _s64(v)
    if r.smin == sv:
        return _clamp(r, smin=sv + 1)
    if r.smax == sv:
        return _clamp(r, smax=sv - 1)
    return r


# ---------------------------------------------------------------- states

@dataclass(slots=True)
class Slot:
    types: tuple[str, ...]      # 8 bytes, index = byte offset within the slot (0 = lowest address)
    spilled: Reg                # the spilled register (STACK_SPILL bytes)


@dataclass(slots=True)
class State:
    regs: list[Reg]
    stack: dict[int, Slot]      # slot index k covers [-8(k+1), -8k)
    parent: Checkpoint | None = None
    hist: int = 0
    refs: frozenset[int] = frozenset()
    callsite: int = -1          # an async callback's frame: the insn that registered it

    def copy(self) -> State:
        return State(list(self.regs), dict(self.stack), self.parent, self.hist, self.refs,
                     self.callsite)


@dataclass(slots=True, eq=False)
class Checkpoint:
    insn: int
    regs: list[Reg]
    stack: dict[int, Slot]
    parent: Checkpoint | None
    callsite: int = -1
    branches: int = 1
    hit: int = 0
    miss: int = 0
    evicted: bool = False


@dataclass
class Result:
    processed: int
    total_states: int
    peak_states: int
    complete: bool
    paths: int

    @property
    def estimate(self) -> int:
        return int(self.processed * MARGIN) if self.complete else LIMIT + 1


# ---------------------------------------------------------------- program layout and static analyses

@dataclass
class Layout:
    insns: dict[int, object]            # slot index -> decoded Insn
    ref: dict[int, tuple[str, str]]     # slot index -> ("map"|"data"|"func", name or target)
    func_start: dict[str, int]
    size: int
    rodata: set[str] = field(default_factory=set)


def layout(elf: bytes, program_name: str) -> Layout:
    from etran.backend.disasm import decode_one
    obj = read_object(elf)
    prog = obj.program(program_name)
    fns = [prog, *prog.subprograms]
    starts: dict[str, int] = {}
    idx = 0
    for fn in fns:
        starts[fn.name] = idx
        idx += fn.slot_count
    insns: dict[int, object] = {}
    refs: dict[int, tuple[str, str]] = {}
    for fn in fns:
        base = starts[fn.name]
        relocs = obj.relocations.get(fn.section, {})
        pos = 0
        for raw in fn.instructions:
            i = base + pos // 8
            insn = decode_one(raw, obj.little_endian)
            insns[i] = insn
            callee = fn.calls.get(pos)
            sym = relocs.get(fn.offset + pos)
            if callee is not None:
                refs[i] = ("func", callee)
            elif sym is not None:
                if sym in obj.maps:
                    refs[i] = ("map", sym)
                elif sym in obj.externs:
                    raise Unsupported(f"extern {sym}")
                else:
                    refs[i] = ("data", sym)
            pos += len(raw)
    return Layout(insns, refs, starts, idx)


def _succs(lay: Layout, i: int) -> list[int]:
    ins = lay.insns[i]
    code = ins.code
    cls = code & 7
    nxt = i + (2 if code == LD_IMM64 else 1)
    if cls in (5, 6):
        op = code & 0xF0
        if op == 0x90:
            return []
        if op == 0x80:
            return [nxt]
        if op == 0x00:
            return [nxt + (ins.imm if cls == 6 else ins.off)]
        return [nxt, nxt + ins.off]
    return [nxt]


def static_analyses(lay: Layout) -> tuple[dict[int, int], dict[int, int], set[int], set[int], set[int]]:
    """Register liveness (bitmask before each insn), precision demand (bitmask of registers
    that some path from the insn may make precise), prune points, jump points, loop insns."""
    order = sorted(lay.insns)
    use: dict[int, int] = {}
    defs: dict[int, int] = {}
    sink: dict[int, int] = {}
    prune: set[int] = set()
    jmp: set[int] = set()
    for i in order:
        ins = lay.insns[i]
        code, cls = ins.code, ins.code & 7
        d, s = ins.dst, ins.src
        u = df = sk = 0
        nxt = i + (2 if code == LD_IMM64 else 1)
        if cls in (4, 7):
            op = code & 0xF0
            x = code & 8
            if op == 0xB0:
                df = 1 << d
                u = (1 << s) if x else 0
            elif op in (0x80, 0xD0):
                u, df = 1 << d, 1 << d
            else:
                u = (1 << d) | ((1 << s) if x else 0)
                df = 1 << d
                if cls == 7 and op in (0x00, 0x10):
                    sk = u  # pointer arithmetic: the scalar operand becomes precise
        elif cls == 0:
            df = 1 << d
            if code == LD_IMM64 and ins.src == 4 or lay.ref.get(i, ("",))[0] == "func":
                prune.add(i)
                prune.add(nxt)
                jmp.add(nxt)
        elif cls == 1:
            u, df = 1 << s, 1 << d
        elif cls == 2:
            u = 1 << d
        elif cls == 3:
            u = (1 << d) | (1 << s)
            sk = 1 << s   # spilled values: every stack slot counts as precise
            if code & 0xE0 == 0xC0:
                if ins.imm & 1:
                    df = 1 << s
                if ins.imm == 0xF1:
                    u |= 1
                    df = 1
        else:
            op = code & 0xF0
            if op == 0x80:
                if ins.src == 1:
                    raise Unsupported("BPF-to-BPF call")
                if ins.src != 0:
                    raise Unsupported("kfunc call")
                u = 0b111110
                sk = u
                df = 0b111111
                prune.add(nxt)
                jmp.add(nxt)
                if ins.imm == 170:  # timer_set_callback: async callback calling insn
                    prune.add(i)
            elif op == 0x90:
                u = 1
                sk = 1
            elif op == 0x00:
                t = nxt + (ins.imm if cls == 6 else ins.off)
                prune.add(t)
                jmp.add(t)
            elif op == 0xE0:
                raise Unsupported("may_goto")
            else:
                u = (1 << d) | ((1 << s) if code & 8 else 0)
                sk = u
                prune.add(i)
                prune.add(nxt + ins.off)
                jmp.add(nxt + ins.off)
        use[i], defs[i], sink[i] = u & 0x3FF, df, sk & 0x3FF
    succ = {i: _succs(lay, i) for i in order}
    live = {i: 0 for i in order}
    changed = True
    while changed:
        changed = False
        for i in reversed(order):
            out_l = 0
            for t in succ[i]:
                out_l |= live.get(t, 0)
            nl = use[i] | (out_l & ~defs[i])
            if nl != live[i]:
                live[i] = nl
                changed = True
    demand = _demand(lay, order, succ)
    # instructions on a CFG cycle
    loops = _cycle_insns(order, succ)
    return live, demand, prune, jmp, loops


TOP = "T"
SLOTS = 0xFFFFFFFFFFFFFFFF << 16     # bits 16..79: stack slots 0..63 (slot k = [-8(k+1), -8k))


def _fp_offsets(lay: Layout, order: list[int], succ: dict[int, list[int]]) -> dict[int, tuple]:
    """Forward may-analysis: before each insn, for each register, the set of frame-pointer
    offsets it may hold (None in the set: it may hold something else), or TOP."""
    def join(a: tuple, b: tuple) -> tuple:
        out = []
        for x, y in zip(a, b):
            if x == TOP or y == TOP:
                out.append(TOP)
            else:
                u = x | y
                out.append(TOP if len(u) > 6 else u)
        return tuple(out)
    NONE = frozenset([None])
    entry = tuple([NONE] * 10 + [frozenset([0])])
    before: dict[int, tuple] = {order[0]: entry} if order else {}
    for name, start in lay.func_start.items():   # callbacks start with nothing on the stack
        before.setdefault(start, entry)
    work = list(before)
    while work:
        i = work.pop()
        st = list(before[i])
        ins = lay.insns[i]
        code, cls = ins.code, ins.code & 7
        d, sr = ins.dst, ins.src
        if cls in (4, 7):
            op = code & 0xF0
            if op == 0xB0 and code & 8 and cls == 7 and not ins.off:
                st[d] = st[sr]
            elif cls == 7 and op in (0x00, 0x10) and st[d] != TOP and st[d] != NONE:
                if code & 8:
                    st[d] = TOP
                else:
                    k = ins.imm if op == 0x00 else -ins.imm
                    st[d] = frozenset(None if x is None else x + k for x in st[d])
            else:
                st[d] = NONE
        elif cls == 0:
            st[d] = NONE
        elif cls == 1:
            st[d] = TOP if (st[sr] == TOP or st[sr] != NONE) and code & 0x18 == 0x18 else NONE
        elif cls == 3 and code & 0xE0 == 0xC0:
            if ins.imm & 1:
                st[sr] = NONE
            if ins.imm == 0xF1:
                st[0] = NONE
        elif cls in (5, 6) and code & 0xF0 == 0x80:
            for r in range(6):
                st[r] = NONE
        new = tuple(st)
        for t in succ[i]:
            if t not in lay.insns:
                continue
            old = before.get(t)
            merged = new if old is None else join(old, new)
            if merged != old:
                before[t] = merged
                work.append(t)
    return before


def _slot_bits(v, off: int, size: int) -> tuple[int, bool]:
    """Stack-slot bits an access [base+off, +size) may touch, and whether it surely hits
    exactly one known slot (the base is certainly the frame pointer plus a constant)."""
    if v == TOP:
        return SLOTS, False
    bits = 0
    sure = None not in v and len(v) == 1
    for c in v:
        if c is None:
            continue
        a = c + off
        for o in (a, a + size - 1):
            if -512 <= o < 0:
                bits |= 1 << (16 + (-o - 1) // 8)
            else:
                return SLOTS, False
    return bits, sure


def _demand(lay: Layout, order: list[int], succ: dict[int, list[int]]) -> dict[int, int]:
    """Backward may-analysis over registers (bits 0-9) and stack slots (bits 16+): what some
    path from an insn may make precise (mark_chain_precision's backtracking, over all paths).
    Sinks: scalar operands of pointer arithmetic and of conditional jumps, helper arguments,
    the return value, map lookup keys, values stored to the stack at an odd place."""
    fp = _fp_offsets(lay, order, succ)
    main_end = min([v for v in lay.func_start.values() if v > 0], default=lay.size)
    NONE = frozenset([None])
    demand = {i: 0 for i in order}
    changed = True
    while changed:
        changed = False
        for i in reversed(order):
            if i not in fp:
                continue
            nd = 0
            for t in succ[i]:
                nd |= demand.get(t, 0)
            ins = lay.insns[i]
            code, cls, d, sr = ins.code, ins.code & 7, ins.dst, ins.src
            f = fp[i]
            if cls in (4, 7):
                op = code & 0xF0
                x = code & 8
                if op == 0xB0:
                    if nd >> d & 1:
                        nd &= ~(1 << d)
                        if x:
                            nd |= 1 << sr
                elif op in (0x80, 0xD0):
                    pass
                else:
                    if x and nd >> d & 1:
                        nd |= 1 << sr
                    if cls == 7 and op in (0x00, 0x10):
                        nd |= (1 << d) | ((1 << sr) if x else 0)   # pointer arithmetic
            elif cls == 0:
                nd &= ~(1 << d)
            elif cls == 1:
                if nd >> d & 1:
                    nd &= ~(1 << d)
                    if f[sr] != NONE:
                        nd |= _slot_bits(f[sr], ins.off, {0: 4, 8: 2, 16: 1, 24: 8}[code & 0x18])[0]
            elif cls in (2, 3):
                size = {0: 4, 8: 2, 16: 1, 24: 8}[code & 0x18]
                if f[d] != NONE and not code & 0xE0 == 0xC0:
                    bits, sure = _slot_bits(f[d], ins.off, size)
                    aligned = f[d] != TOP and all(c is None or (c + ins.off) % 8 == 0 for c in f[d])
                    if cls == 3 and (nd & bits or not aligned):
                        nd |= 1 << sr
                    if sure and aligned and size == 8 and bits & nd:
                        nd &= ~bits
                if code & 0xE0 == 0xC0:
                    nd |= 1 << sr | 1
            else:
                op = code & 0xF0
                if op == 0x80:
                    nd &= ~0b111111
                    nd |= 0b111110
                    if ins.imm == 1 and f[2] != NONE:
                        nd |= _slot_bits(f[2], 0, 4)[0]
                elif op == 0x90:
                    if i >= main_end:
                        nd |= 1   # a callback's return value is checked (XDP's is not)
                elif op != 0x00:
                    nd |= (1 << d) | ((1 << sr) if code & 8 else 0)
            nd &= 0x3FF | SLOTS
            if nd != demand[i]:
                demand[i] = nd
                changed = True
    return demand


def _cycle_insns(order: list[int], succ: dict[int, list[int]]) -> set[int]:
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on: set[int] = set()
    st: list[int] = []
    out: set[int] = set()
    counter = [0]
    import sys
    sys.setrecursionlimit(max(10000, 4 * len(order)))

    def strong(v: int) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        st.append(v)
        on.add(v)
        for w in succ.get(v, []):
            if w not in succ:
                continue
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = st.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in succ.get(v, []):
                out.update(comp)

    for v in order:
        if v not in index:
            strong(v)
    return out


# ---------------------------------------------------------------- the explorer

class Explorer:
    def __init__(self, lay: Layout, max_processed: int = LIMIT,
                 maps: dict[str, tuple[int, int, int]] | None = None) -> None:
        self.lay = lay
        self.maps = maps or {}
        self.live, self.demand, self.prune, self.jmp, self.loops = static_analyses(lay)
        self.max_processed = max_processed
        self.explored: dict[int, list[Checkpoint]] = {}
        self.insn_processed = 0
        self.jmps_processed = 0
        self.prev_insn = 0
        self.prev_jmps = 0
        self.id_gen = 0
        self.total_states = 0
        self.peak_states = 0
        self.cur_states = 0
        self.paths = 0
        self.work: list[tuple[int, State]] = []
        self.tmp_id = 0

    def new_id(self) -> int:
        self.id_gen += 1
        return self.id_gen

    # -- entry
    def run(self, entry: int = 0) -> Result:
        regs = [NOT_INIT] * 11
        regs[1] = ptr("ctx")
        regs[10] = ptr("stack")
        self.work.append((entry, State(regs, {})))
        complete = True
        while self.work:
            idx, st = self.work.pop()
            if not self.path(idx, st):
                complete = False
                break
        return Result(self.insn_processed, self.total_states, self.peak_states, complete, self.paths)

    def path(self, idx: int, st: State) -> bool:
        lay = self.lay
        while True:
            self.insn_processed += 1
            if self.insn_processed > self.max_processed:
                return False
            if idx in self.prune:
                if self.visited(idx, st):
                    self.end(st)
                    return True
            if idx in self.jmp:
                st.hist += 1
            ins = lay.insns.get(idx)
            if ins is None:
                raise Unsupported(f"jump out of the program at {idx}")
            nxt = self.step(idx, ins, st)
            if nxt is None:
                self.end(st)
                return True
            idx = nxt

    def end(self, st: State) -> None:
        self.paths += 1
        c = st.parent
        while c is not None:
            c.branches -= 1
            if c.branches:
                break
            c = c.parent

    def push(self, idx: int, st: State) -> None:
        if st.parent is not None:
            st.parent.branches += 1
        self.work.append((idx, st))

    # -- is_state_visited
    def visited(self, idx: int, cur: State) -> bool:
        force = cur.hist > 40
        add = force or (self.jmps_processed - self.prev_jmps >= 2 and
                        self.insn_processed - self.prev_insn >= 8)
        lst = self.explored.get(idx)
        if lst:
            keep = []
            pruned = False
            for i, c in enumerate(lst):
                if pruned:
                    keep.append(c)
                    continue
                if c.branches:
                    if not force and self.jmps_processed - self.prev_jmps < 20 and \
                            self.insn_processed - self.prev_insn < 100:
                        add = False
                elif self.states_equal(c, cur, idx):
                    c.hit += 1
                    pruned = True
                    keep.append(c)
                    continue
                if add:
                    c.miss += 1
                if c.miss > c.hit * 3 + 3:
                    c.evicted = True
                    self.cur_states -= 1
                    continue
                keep.append(c)
            self.explored[idx] = keep
            if pruned:
                return True
        if not add:
            return False
        c = Checkpoint(idx, list(cur.regs), dict(cur.stack), cur.parent, cur.callsite)
        self.explored.setdefault(idx, []).insert(0, c)
        cur.parent = c
        cur.hist = 0
        self.prev_insn = self.insn_processed
        self.prev_jmps = self.jmps_processed
        self.total_states += 1
        self.cur_states += 1
        self.peak_states = max(self.peak_states, self.cur_states)
        return False

    def states_equal(self, old: Checkpoint, cur: State, idx: int) -> bool:
        if old.callsite != cur.callsite:
            return False
        live = self.live[idx]
        demand = self.demand[idx]
        idmap: dict[int, int] = {}
        rev: dict[int, int] = {}
        for r in range(10):
            if not live >> r & 1:
                continue
            if not self.regsafe(old.regs[r], cur.regs[r], bool(demand >> r & 1), idmap, rev):
                return False
        return self.stacksafe(old.stack, cur.stack, idmap, rev, demand)

    @staticmethod
    def check_ids(a: int, b: int, idmap: dict[int, int], rev: dict[int, int]) -> bool:
        if not a and not b:
            return True
        if not a or not b:
            return False
        if a in idmap:
            return idmap[a] == b
        if b in rev:
            return False
        idmap[a] = b
        rev[b] = a
        return True

    def check_scalar_ids(self, a: int, b: int, idmap: dict, rev: dict) -> bool:
        self.tmp_id -= 1
        a = a or self.tmp_id
        self.tmp_id -= 1
        b = b or self.tmp_id
        return self.check_ids(a, b, idmap, rev)

    def regsafe(self, o: Reg, c: Reg, precise: bool, idmap: dict, rev: dict) -> bool:
        if o.t == "none":
            return True
        if o.t != c.t:
            return False
        if o.t == "scalar":
            if not precise:
                return True
            if o.const and c.const:
                return o.tv == c.tv and self.check_scalar_ids(o.id, c.id, idmap, rev)
            if o.approx or c.approx:
                return False
            if not (o.umin <= c.umin and c.umax <= o.umax and o.smin <= c.smin and c.smax <= o.smax):
                return False
            if (c.tv & ~o.tm) != o.tv or (c.tm & ~o.tm):
                return False
            return self.check_scalar_ids(o.id, c.id, idmap, rev)
        if o.t in ("pkt", "pkt_meta"):
            if (o.rng < 0 or c.rng < 0) and o.rng != c.rng:
                return False
            if o.rng > c.rng or o.off != c.off:
                return False
            if not self.check_ids(o.id, c.id, idmap, rev):
                return False
            return self._var_within(o, c)
        if o.t in ("map_value", "map_value_or_null", "mem", "mem_or_null"):
            if o.mp != c.mp or o.off != c.off:
                return False
            if o.t.endswith("_or_null") or o.id or c.id:
                if not self.check_ids(o.id, c.id, idmap, rev):
                    return False
            return self._var_within(o, c)
        # stack, ctx, pkt_end, map_ptr, func, map_key: exact
        return o == c or (o.off == c.off and o.mp == c.mp and o.var_equal(c) and
                          self.check_ids(o.id, c.id, idmap, rev))

    @staticmethod
    def _var_within(o: Reg, c: Reg) -> bool:
        if o.approx or c.approx:
            return False
        return (o.umin <= c.umin and c.umax <= o.umax and o.smin <= c.smin and c.smax <= o.smax
                and (c.tv & ~o.tm) == o.tv and not (c.tm & ~o.tm))

    def stacksafe(self, old: dict[int, Slot], cur: dict[int, Slot], idmap: dict, rev: dict,
                  demand: int) -> bool:
        for k, os_ in old.items():
            precise = bool(demand >> (16 + k) & 1)
            cs = cur.get(k)
            ot = os_.types
            if all(t == "i" for t in ot):
                continue
            if cs is None:
                ct = ("i",) * 8
                cs = Slot(ct, NOT_INIT)
            ct = cs.types
            oreg = self._scalar_for_stack(os_)
            creg = self._scalar_for_stack(cs)
            if oreg is not None and creg is not None:
                if not self.regsafe(oreg, creg, precise, idmap, rev):
                    return False
                continue
            for b in range(8):
                a, c = ot[b], ct[b]
                if a in "im":    # INVALID / MISC (allow_uninit_stack): anything goes
                    continue
                if a != c:
                    return False
            if ot[0] == "s":
                if not self.regsafe(os_.spilled, cs.spilled, precise, idmap, rev):
                    return False
        return True

    @staticmethod
    def _scalar_for_stack(s: Slot) -> Reg | None:
        if all(t == "s" for t in s.types) and s.spilled.t == "scalar":
            return s.spilled
        if all(t in "mi" for t in s.types):
            return UNKNOWN
        return None

    # -- one instruction; returns the next index or None when the path ends
    def step(self, i: int, ins, st: State) -> int | None:
        code = ins.code
        cls = code & 7
        regs = st.regs
        d, s = ins.dst, ins.src
        if cls in (4, 7):
            self.alu(ins, regs, cls == 4)
            return i + 1
        if cls == 0:
            if code != LD_IMM64:
                raise Unsupported("legacy packet access")
            ref = self.lay.ref.get(i)
            if ref is None:
                if ins.src in (0,):
                    regs[d] = known(ins.imm64 or 0)
                else:
                    raise Unsupported(f"ld_imm64 src {ins.src}")
            elif ref[0] == "map":
                regs[d] = Reg("map_ptr", 0, 0, 0, 0, 0, 0, mp=ref[1])
            elif ref[0] == "data":
                regs[d] = Reg("map_value", 0, 0, 0, 0, 0, 0, off=ins.imm, mp=ref[1])
            else:
                regs[d] = Reg("func", 0, 0, 0, 0, 0, 0, mp=ref[1])
            return i + 2
        if cls == 1:
            self.load(ins, st)
            return i + 1
        if cls in (2, 3):
            self.store(ins, st)
            return i + 1
        # jumps
        self.jmps_processed += 1
        op = code & 0xF0
        if op == 0x00:
            return i + 1 + (ins.imm if cls == 6 else ins.off)
        if op == 0x90:
            return None
        if op == 0x80:
            self.call(i, ins, st)
            return i + 1
        return self.cond(i, ins, st)

    def alu(self, ins, regs: list[Reg], w32: bool) -> None:
        code = ins.code
        op = code & 0xF0
        d = ins.dst
        x = code & 8
        a = regs[d]
        b = regs[ins.src] if x else known(ins.imm if not w32 else ins.imm & U32)
        if op == 0xB0:  # mov
            if x and ins.off:
                regs[d] = sign_unknown(ins.off // 8) if not w32 else scalar(0, U32, approx=True)
                if b.const:
                    v = b.tv & ((1 << ins.off) - 1)
                    sv = v - (1 << ins.off) if v >> (ins.off - 1) else v
                    regs[d] = known(sv & (U32 if w32 else U64))
                return
            if not x:
                regs[d] = known(ins.imm & U32) if w32 else known(ins.imm)
                return
            if b.t != "scalar":
                regs[d] = b if not w32 else scalar(0, U32, approx=True)
                return
            if w32:
                if b.umax <= U32:
                    if not b.const and not b.id:
                        b = Reg(**{**_fields(b), "id": self.new_id()})
                        regs[ins.src] = b
                    regs[d] = b
                else:
                    regs[d] = zext32(b)
                return
            if not b.const and not b.id:
                b = Reg(**{**_fields(b), "id": self.new_id()})
                regs[ins.src] = b
            regs[d] = b
            return
        if op == 0x80:  # neg
            if a.t == "scalar" and a.const:
                regs[d] = known((-a.tv) & (U32 if w32 else U64), a.approx)
            else:
                regs[d] = scalar(0, U32 if w32 else U64, approx=True)
            return
        if op == 0xD0:  # end / bswap
            width = ins.imm
            # byte swaps: unknown (approx: whatever the kernel knows, the model does not)
            regs[d] = scalar(0, (1 << width) - 1 if width < 64 else U64, approx=True)
            return
        if a.t == "scalar" and b.t == "scalar":
            regs[d] = alu_scalar(op, a, b, w32)
            return
        # pointer arithmetic
        if not w32 and op in (0x00, 0x10):
            if a.t != "scalar" and b.t == "scalar":
                regs[d] = self.ptr_add(a, b, op == 0x10)
                return
            if a.t == "scalar" and b.t != "scalar" and op == 0x00:
                regs[d] = self.ptr_add(b, a, False)
                return
            if a.t != "scalar" and b.t != "scalar" and op == 0x10:
                regs[d] = scalar(approx=True)
                return
        regs[d] = scalar(0, U32 if w32 else U64, approx=True)

    def ptr_add(self, p: Reg, k: Reg, sub: bool) -> Reg:
        if p.t in ("map_value_or_null", "mem_or_null", "pkt_end"):
            return scalar(approx=True)  # the kernel refuses it
        f = _fields(p)
        if k.const:
            v = _s64(k.tv)
            f["off"] = p.off - v if sub else p.off + v
            return Reg(**f)
        var = Reg("scalar", p.umin, p.umax, p.smin, p.smax, p.tv, p.tm, approx=p.approx)
        if p.const and p.tv == 0:
            var = known(0)
        nv = alu_scalar(0x10 if sub else 0x00, var, k, False)
        f.update(umin=nv.umin, umax=nv.umax, smin=nv.smin, smax=nv.smax, tv=nv.tv, tm=nv.tm,
                 approx=nv.approx or p.approx)
        if p.t in ("pkt", "pkt_meta"):
            f["id"] = self.new_id()
            f["rng"] = 0
        return Reg(**f)

    def load(self, ins, st: State) -> None:
        regs = st.regs
        code = ins.code
        size = {0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8}[code & 0x18]
        sx = code & 0xE0 == 0x80
        base = regs[ins.src]
        d = ins.dst
        if base.t == "ctx":
            if not base.const:
                regs[d] = sized_unknown(size)
                return
            o = base.off + ins.off
            regs[d] = {0: ptr("pkt"), 4: ptr("pkt_end"),
                       8: ptr("pkt_meta")}.get(o) or sized_unknown(size)
            return
        if base.t == "stack":
            if not (base.const and base.tv == 0):
                regs[d] = sized_unknown(size) if not sx else sign_unknown(size)
                return
            off = base.off + ins.off
            r = self.stack_read(st, off, size)
            if sx and r.t == "scalar" and not r.const:
                r = sign_unknown(size)
            regs[d] = r
            return
        approx = base.t == "map_value" and base.mp.startswith(".rodata")
        regs[d] = sign_unknown(size) if sx else sized_unknown(size, approx)

    def stack_read(self, st: State, off: int, size: int) -> Reg:
        k = (-off - 1) // 8
        slot = st.stack.get(k)
        if slot is None:
            return sized_unknown(size)
        lo = off + 8 * (k + 1)    # byte offset within the slot, 0 = lowest address
        if slot.types[0] == "s":
            spilled = slot.spilled
            spill_size = sum(1 for t in slot.types if t == "s")
            if size == 8 and lo == 0:
                if spill_size == 8 or spilled.t == "scalar":
                    st.hist += 1
                    return spilled
            if spilled.t != "scalar":
                return sized_unknown(size)
            if size <= spill_size and lo == 0:
                st.hist += 1
                r = spilled
                if size < 8 and r.umax >> (8 * size):
                    r = _coerce(r, size)
                return r
            types = slot.types[lo:lo + size]
            if all(t == "s" for t in types) and spilled.const and spilled.tv == 0:
                return known(0)
            if all(t == "z" for t in types):
                return known(0)
            return sized_unknown(size)
        types = slot.types[lo:lo + size]
        if types and all(t == "z" for t in types):
            return known(0)
        return sized_unknown(size)

    def store(self, ins, st: State) -> None:
        code = ins.code
        regs = st.regs
        size = {0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8}[code & 0x18]
        base = regs[ins.dst]
        is_st = code & 7 == 2
        if code & 0xE0 == 0xC0:  # atomics
            if ins.imm & 1:
                regs[ins.src] = sized_unknown(size)
            if ins.imm == 0xF1:
                regs[0] = sized_unknown(size)
            if base.t == "stack":
                self.stack_write(st, base.off + ins.off, size, None, False, 1, -1)
            return
        if base.t != "stack":
            return
        if not (base.const and base.tv == 0):
            # variable offset write (check_stack_write_var_off): the bytes it may touch
            # become MISC, spills there are destroyed
            lo_off = base.off + ins.off + max(base.smin, -512)
            hi_off = base.off + ins.off + min(base.smax, 512) + size
            for off in range(lo_off, hi_off):
                if off >= 0 or off < -512:
                    continue
                self.stack_write(st, off, 1, None, False, 1, -1)
            return
        off = base.off + ins.off
        val = None if is_st else regs[ins.src]
        self.stack_write(st, off, size, val, is_st, ins.imm, -1 if is_st else ins.src)

    def stack_write(self, st: State, off: int, size: int, val: Reg | None, is_st: bool,
                    imm: int, src: int) -> None:
        k = (-off - 1) // 8
        lo = off + 8 * (k + 1)
        old = st.stack.get(k)
        types = list(old.types) if old is not None else ["i"] * 8
        aligned = off % 8 == 0
        if val is not None and aligned and val.t == "scalar":
            r = val
            if not r.const and not r.id and (size == 8 or r.umax >> (8 * size) == 0):
                r = Reg(**{**_fields(r), "id": self.new_id()})
                st.regs[src] = r
            if size < 8 and r.umax >> (8 * size):
                r = Reg(**{**_fields(r), "id": 0})
            self._spill(st, k, r, size, types)
            st.hist += 1
            return
        if val is None and is_st and aligned:
            self._spill(st, k, known(imm), size, types)
            st.hist += 1
            return
        if val is not None and val.t != "scalar" and val.t != "none":
            if size == 8 and aligned:
                st.stack[k] = Slot(("s",) * 8, val)
                st.hist += 1
                return
            # the kernel refuses a narrow spill of a pointer
        zero = (val is not None and val.t == "scalar" and val.const and val.tv == 0) or \
               (val is None and is_st and imm == 0)
        if old is not None and any(t == "s" for t in types):
            types = [("m" if t == "s" else t) for t in types]
        for b in range(lo, lo + size):
            types[b] = "z" if zero else "m"
        st.stack[k] = Slot(tuple(types), NOT_INIT)

    @staticmethod
    def _spill(st: State, k: int, r: Reg, size: int, types: list[str]) -> None:
        if size == 8:
            st.stack[k] = Slot(("s",) * 8, r)
            return
        nt = []
        for b in range(8):
            if b < size:
                nt.append("s")
            else:
                t = types[b]
                nt.append("z" if t == "z" else "i" if t == "i" else "m")
        st.stack[k] = Slot(tuple(nt), r)

    def call(self, i: int, ins, st: State) -> None:
        regs = st.regs
        h = ins.imm
        r1 = regs[1]
        if h in (88, 89) and regs[2].t == "stack" and regs[2].const:
            # map_pop_elem / map_peek_elem write the value into the stack: those bytes are MISC
            size = self.maps.get(r1.mp, (0, 0, 512))[2]
            base = regs[2].off + regs[2].tv
            for off in range(base, min(base + size, 0)):
                self.stack_write(st, off, 1, None, False, 1, -1)
        if h == 1:  # map_lookup_elem
            r0 = ptr("map_value_or_null", id=self.new_id(), mp=r1.mp)
            kind, max_entries, _ = self.maps.get(r1.mp, (0, 0, 0))
            if kind in (2, 6):  # arrays: a constant key in range elides the null check
                key = self.constant_key(st, regs[2])
                if key is not None and key < max_entries:
                    r0 = ptr("map_value", mp=r1.mp)
        elif h == 131:  # ringbuf_reserve
            nid = self.new_id()
            r0 = ptr("mem_or_null", id=nid, mp="ringbuf")
        elif h in (93, 94, 132, 133):  # spin_lock/unlock, ringbuf_submit/discard: void
            r0 = NOT_INIT
        else:
            r0 = scalar()   # RET_INTEGER: unknown, as in the kernel
        if h in (44, 54, 65):  # packet data may move: every packet pointer is invalid
            def inval(r: Reg) -> Reg:
                return scalar(approx=True) if r.t in ("pkt", "pkt_meta", "pkt_end") else r
            for j in range(11):
                regs[j] = inval(regs[j])
            for k, sl in list(st.stack.items()):
                if sl.types[0] == "s" and sl.spilled.t in ("pkt", "pkt_meta", "pkt_end"):
                    st.stack[k] = Slot(("m",) * 8, NOT_INIT)
        if h == 170:  # timer_set_callback: the callback is verified as a new state
            fn = regs[2]
            if fn.t == "func":
                start = self.lay.func_start[fn.mp]
                cregs = [NOT_INIT] * 11
                cregs[1] = Reg("map_ptr", 0, 0, 0, 0, 0, 0, mp="timer_map")
                cregs[2] = Reg("map_key", 0, 0, 0, 0, 0, 0)
                cregs[3] = Reg("map_value", 0, 0, 0, 0, 0, 0, mp="timer_map")
                cregs[10] = Reg("stack", 0, 0, 0, 0, 0, 0, off=0, mp="async")
                self.work.append((start, State(cregs, {}, callsite=i)))  # fresh state, no parent
        regs[0] = r0
        for j in range(1, 6):
            regs[j] = NOT_INIT

    @staticmethod
    def constant_key(st: State, key: Reg, key_size: int = 4) -> int | None:
        """get_constant_map_key"""
        if key.t != "stack" or not key.const:
            return None
        off = key.off + key.tv
        k = (-off - 1) // 8
        lo = off + 8 * (k + 1)
        slot = st.stack.get(k)
        if slot is None:
            return None
        zeros = 0
        for b in range(lo, 8):
            if slot.types[b] != "z":
                break
            zeros += 1
        if zeros >= key_size:
            return 0
        if slot.types[0] != "s" or slot.spilled.t != "scalar":
            return None
        spill = 0
        for b in range(lo, 8):
            if slot.types[b] != "s":
                break
            spill += 1
        if spill != key_size or not slot.spilled.const:
            return None
        return slot.spilled.tv

    def cond(self, i: int, ins, st: State) -> int | None:
        code = ins.code
        w32 = code & 7 == 6
        op = code & 0xF0
        x = code & 8
        regs = st.regs
        d = ins.dst
        a = regs[d]
        b = regs[ins.src] if x else known((ins.imm & U32) if w32 else ins.imm)
        taken_idx = i + 1 + ins.off
        fall_idx = i + 1
        if op == 0xE0:
            raise Unsupported("may_goto")
        # pointers
        if a.t != "scalar" or b.t != "scalar":
            return self.cond_ptr(ins, st, a, b, op, w32, x, taken_idx, fall_idx)
        pred = branch_taken(a, b, op, w32)
        if pred == 1:
            return taken_idx
        if pred == 0:
            return fall_idx
        # both: push the taken branch, continue with the fall-through
        other = st.copy()
        ta, tb = refine(a, b, op, w32)
        fa, fb = refine(a, b, _NEG[op], w32) if op in _NEG else (a, b)
        self._set_linked(other, d, ta)
        if x:
            self._set_linked(other, ins.src, tb)
        self._set_linked(st, d, fa)
        if x:
            self._set_linked(st, ins.src, fb)
        self.push(taken_idx, other)
        return fall_idx

    @staticmethod
    def _set_linked(st: State, r: int, new: Reg) -> None:
        old = st.regs[r]
        if old is new:
            return
        st.regs[r] = new
        if old.id and old.t == "scalar":
            for j in range(11):
                q = st.regs[j]
                if j != r and q.t == "scalar" and q.id == old.id:
                    st.regs[j] = new
            for k, sl in list(st.stack.items()):
                q = sl.spilled
                if sl.types[0] == "s" and q.t == "scalar" and q.id == old.id:
                    st.stack[k] = Slot(sl.types, new)

    def cond_ptr(self, ins, st: State, a: Reg, b: Reg, op: int, w32: bool, x: int,
                 taken_idx: int, fall_idx: int) -> int | None:
        regs = st.regs
        d, s = ins.dst, ins.src
        # pointer against constant zero: null checks
        zero_b = b.t == "scalar" and b.const and b.tv == 0
        if a.t != "scalar" and zero_b and op in (_JEQ, _JNE) and not w32:
            if a.t.endswith("_or_null"):
                other = st.copy()
                null_st, ok_st = (other, st) if op == _JEQ else (st, other)
                self._mark_null(null_st, a.id, True)
                self._mark_null(ok_st, a.id, False)
                self.push(taken_idx, other)
                return fall_idx
            if a.t in ("map_value", "map_key", "mem", "map_ptr"):   # reg_not_null: decided
                return fall_idx if op == _JEQ else taken_idx
        if x and not w32 and self._pkt_pair(a, b):
            pred = self._pkt_taken(a, b, op)
            if pred == 1:
                return taken_idx
            if pred == 0:
                return fall_idx
            other = st.copy()
            self._pkt_compare(op, d, s, a, b, st, other)
            self.push(taken_idx, other)
            return fall_idx
        other = st.copy()
        self.push(taken_idx, other)
        return fall_idx

    @staticmethod
    def _pkt_pair(a: Reg, b: Reg) -> bool:
        kinds = {a.t, b.t}
        return kinds in ({"pkt", "pkt_end"}, {"pkt_meta", "pkt"})

    @staticmethod
    def _pkt_taken(a: Reg, b: Reg, op: int) -> int:
        if b.t == "pkt_end":
            pkt = a
        elif a.t == "pkt_end":
            pkt, op = b, _FLIP[op]
        else:
            return -1
        if pkt.rng >= 0:
            return -1
        if op in (_JLE, _JGT):
            if pkt.rng == BEYOND_PKT_END:
                return int(op == _JGT)
        elif op in (_JLT, _JGE):
            if pkt.rng in (BEYOND_PKT_END, AT_PKT_END):
                return int(op == _JGE)
        return -1

    def _pkt_compare(self, op: int, d: int, s: int, a: Reg, b: Reg, this: State, other: State) -> None:
        fwd = (a.t == "pkt" and b.t == "pkt_end") or (a.t == "pkt_meta" and b.t == "pkt")
        rev = (a.t == "pkt_end" and b.t == "pkt") or (a.t == "pkt" and b.t == "pkt_meta")
        if op == _JGT:
            if fwd:
                self._good(this, a, False); self._mark_end(other, d, True)
            elif rev:
                self._good(other, b, True); self._mark_end(this, s, False)
        elif op == _JLT:
            if fwd:
                self._good(other, a, True); self._mark_end(this, d, False)
            elif rev:
                self._good(this, b, False); self._mark_end(other, s, True)
        elif op == _JGE:
            if fwd:
                self._good(this, a, True); self._mark_end(other, d, False)
            elif rev:
                self._good(other, b, False); self._mark_end(this, s, True)
        elif op == _JLE:
            if fwd:
                self._good(other, a, False); self._mark_end(this, d, True)
            elif rev:
                self._good(this, b, True); self._mark_end(other, s, False)

    @staticmethod
    def _good(st: State, p: Reg, right_open: bool) -> None:
        if p.off < 0 or (p.off == 0 and right_open):
            return
        if p.umax > MAX_PACKET_OFF or p.umax + p.off > MAX_PACKET_OFF:
            return
        new = p.off - 1 if right_open else p.off
        for j in range(11):
            q = st.regs[j]
            if q.t == p.t and q.id == p.id and q.rng < new:
                st.regs[j] = Reg(**{**_fields(q), "rng": new})
        for k, sl in list(st.stack.items()):
            q = sl.spilled
            if sl.types[0] == "s" and q.t == p.t and q.id == p.id and q.rng < new:
                st.stack[k] = Slot(sl.types, Reg(**{**_fields(q), "rng": new}))

    @staticmethod
    def _mark_end(st: State, r: int, beyond: bool) -> None:
        q = st.regs[r]
        if q.t in ("pkt", "pkt_meta"):
            st.regs[r] = Reg(**{**_fields(q), "rng": BEYOND_PKT_END if beyond else AT_PKT_END})

    @staticmethod
    def _mark_null(st: State, pid: int, is_null: bool) -> None:
        def fix(q: Reg) -> Reg:
            if q.id != pid or not q.t.endswith("_or_null"):
                return q
            if is_null:
                return known(0)
            f = _fields(q)
            f["t"] = q.t[: -len("_or_null")]
            f["id"] = 0 if q.t == "map_value_or_null" else q.id
            return Reg(**f)
        for j in range(11):
            st.regs[j] = fix(st.regs[j])
        for k, sl in list(st.stack.items()):
            if sl.types[0] == "s":
                n = fix(sl.spilled)
                if n is not sl.spilled:
                    st.stack[k] = Slot(sl.types, n)


def cls_is_bswap(code: int) -> bool:
    return code & 7 == 7


def _coerce(r: Reg, size: int) -> Reg:
    m = (1 << (8 * size)) - 1
    if r.const:
        return known(r.tv & m, r.approx)
    if r.umax <= m:
        return r
    return _sync("scalar", 0, m, 0, m, r.tv & m, r.tm & m, r.approx)


# ---------------------------------------------------------------- entry points

def explore(elf: bytes, program_name: str, max_processed: int = LIMIT,
            maps: dict[str, tuple[int, int, int]] | None = None) -> Result:
    """Replay the verifier's exploration of one program of a compiled object. `maps` gives
    each map's kernel type and max_entries (array lookups with a constant key are not null)."""
    lay = layout(elf, program_name)
    return Explorer(lay, max_processed, maps).run(0)


def estimate_object(elf: bytes, program_name: str,
                    maps: dict[str, tuple[int, int, int]] | None = None) -> int:
    """The model's estimate of the kernel's `processed` count for `program_name`: the
    replayed count times MARGIN, or LIMIT + 1 when the replay passed the limit."""
    return explore(elf, program_name, maps=maps).estimate

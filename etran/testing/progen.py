"""Random well-typed transports, as a hypothesis strategy, for differential and soundness tests.

Issue 4 asks two properties of every program the checker accepts: the kernel
verifier accepts it too (within the checker's work estimate), and the compiled
program and the reference interpreter agree on every input. Hand-written
examples cover what their authors thought of; this module draws programs over
the whole language instead::

    from etran.testing.progen import programs

    @given(programs(max_statements=30))
    def test_something(p: GeneratedProgram) -> None:
        program = check_source(p.source, "gen.py")
        ...

A generated program is *source text*, formatted as a person would write it,
which the tests parse and check with the real compiler (no shortcut to a typed
program: the parser and the checker are under test too). It is well-typed by
construction: the generator tracks types, None checks, stale views and map
references, locks, stack and verifier paths (see `progen_exprs`), so the
checker accepts nearly all programs; a refusal is a checker bug or, rarely, the
budget rule. Values come from packet fields, map contents and `pkt.len`, so
inputs steer the paths; map keys stay in small ranges (`x & 3`, `S(f=y & 1)`)
so that the contents a test puts in the maps get hit.

Miscompiled corners (issue 11) show only when an operator runs on values no
compiler can fold, at the values where implementations differ, and its result
reaches what a test compares. So a hook starts by taking `out`, the one entry
of the `traces` map (a field of every integer type, which tests fill with edge
values), and *probes* store into it: each is one operator, builtin or method
(dealt from `PROBE_OPS` so that all come up) on runtime values, with a second
operand that is a runtime value or an edge constant (`edge_values`: 0, 1, -1,
the extremes, shift counts at and past the width, divisors 0 and -1, MIN...).
Timers (start, cancel, their results), redirects and the checksum helpers are
drawn too. `coverage` says which corners (`CORNERS`) a checked program reaches.

Every choice is a hypothesis draw whose first option is the simplest, and sizes
shrink to zero, so failing programs shrink to short readable ones
(`sample_programs` drives the same generator from a seeded random, for rates and
campaigns: tests/property/campaign.py). `features` restricts the constructs
(names in `FEATURES`); `GeneratedProgram.features` says which ones a program uses.
"""
from __future__ import annotations

import functools
import keyword
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from hypothesis import strategies as st

from etran.abi import MAX_TEST_FRAME
from etran.testing.progen_exprs import (
    BE16,
    BE32,
    BE64,
    BOOL,
    CHECKSUM_STACK,
    I8,
    I16,
    I32,
    I64,
    INTS,
    LOCK,
    PREC,
    U8,
    U16,
    U32,
    U64,
    Arr,
    ConstDef,
    E,
    ExprGen,
    FnCtx,
    Frame,
    FuncDef,
    Int,
    MapDef,
    MethodDef,
    Plain,
    StructDef,
    Var,
    binop,
    lit_text,
    wider,
    wrap,
)

FEATURES = frozenset({
    "structs", "arrays", "constants", "maps", "lru", "percpu", "queue", "ringbuf", "packets",
    "headers", "arith", "division", "shifts", "unary", "casts", "minmax", "compare", "seq",
    "branches", "loops", "functions", "locks", "none_checks", "atomics", "resize", "actions",
    "helpers", "checksum", "trace", "timers", "redirect", "csum",
})


@dataclass(frozen=True)
class GeneratedProgram:
    source: str                     # a complete transport module
    hooks: tuple[str, ...]          # its @xdp hooks
    features: frozenset[str]        # the constructs it uses (names from FEATURES)


def programs(max_statements: int = 40, features: frozenset[str] | None = None
             ) -> st.SearchStrategy[GeneratedProgram]:
    """Random well-typed transports of at most about `max_statements` statements.

    `features` (default: all of `FEATURES`) switches constructs on. A few come with any
    program and are reported whenever used: a hook returns an action (`actions`), conditions
    compare (`compare`), lookups and views are checked (`none_checks`), map values are built
    (`structs`), the standard headers have array fields (`arrays`), `x += y` is `arith`.
    """
    return _programs(max_statements, _features(features))


def _features(features: frozenset[str] | None) -> frozenset[str]:
    feats = FEATURES if features is None else frozenset(features)
    if feats - FEATURES:
        raise ValueError(f"unknown features {sorted(feats - FEATURES)}; known: {sorted(FEATURES)}")
    return feats


def sample_programs(n: int, max_statements: int = 40, features: frozenset[str] | None = None,
                    seed: int = 0) -> list[GeneratedProgram]:
    """`n` independent programs, the same ones for the same seed (statistics and campaigns).

    The choices come from a seeded `random.Random` instead of hypothesis: hypothesis explores
    by mutating earlier examples, so its programs come in families of near-duplicates, which
    would skew rates measured over them.
    """
    return [sample_program(i, max_statements, features, seed) for i in range(n)]


def sample_program(i: int, max_statements: int = 40, features: frozenset[str] | None = None,
                   seed: int = 0) -> GeneratedProgram:
    """The `i`th of `sample_programs(n, ..., seed=seed)` for any n > i, drawn on its own (a
    campaign's worker draws the programs it runs)."""
    feats = _features(features)
    return ProgramGen(random.Random(seed * 1_000_003 + i).randint, max_statements, feats).generate()


@st.composite
def _programs(draw: Any, max_statements: int, features: frozenset[str]) -> GeneratedProgram:
    return ProgramGen(lambda lo, hi: int(draw(st.integers(lo, hi))), max_statements,
                      features).generate()


def _builtin_headers() -> dict[str, StructDef]:
    """The headers of etran.bpf_templates.headers, as the generator sees them."""
    def fields(spec: str) -> list[tuple[str, Any]]:
        types = {"u8": U8, "be16": BE16, "be32": BE32, "mac": Arr(U8, 6)}
        return [(f, types[t]) for f, t in (x.split(":") for x in spec.split())]
    return {h.name: h for h in (
        StructDef("Eth", True, fields("dst:mac src:mac proto:be16"), True),
        StructDef("IPv4", True, fields("ver_ihl:u8 tos:u8 total_len:be16 id:be16 frag_off:be16 "
                                       "ttl:u8 protocol:u8 check:be16 src:be32 dst:be32"), True,
                  [MethodDef("header_len", U32), MethodDef("version", U8), MethodDef("ecn", U8),
                   MethodDef("dscp", U8)]),
        StructDef("Udp", True, fields("src_port:be16 dst_port:be16 len:be16 check:be16"), True),
        StructDef("Tcp", True, fields("src_port:be16 dst_port:be16 seq:be32 ack_seq:be32 doff_res:u8 "
                                      "flags:u8 window:be16 check:be16 urg_ptr:be16"), True,
                  [MethodDef("header_len", U32), MethodDef("has", BOOL, U8)]))}


STRUCT_NAMES = "Flow Stats Conn Entry Slot Window Bucket Sample Rec State".split()
HEADER_NAMES = "Shim Tag Probe Word Marker".split()
FIELD_NAMES = ("count total last seq flags size port mark hits nbytes state nxt prev hist mask limit "
               "base delta score ok kind tag lo hi cwnd rtt").split()
MAP_NAMES = {"HashMap": "flows", "LruHashMap": "recent", "PerCpuHashMap": "per_cpu",
             "ArrayMap": "slots", "PerCpuArray": "totals", "Queue": "pending", "RingBuf": "events"}
FUNC_NAMES = "update classify mix clamp account check_flow advance score".split()
HOOK_NAMES = ["rx", "classify_rx"]
INT_NAMES = "n x size total delta acc off diff val limit".split()
BOOL_NAMES = "ok flag hit seen full".split()
ACTIONS = ["XDP_PASS", "XDP_DROP", "XDP_TX", "XDP_ABORTED", "XDP_REDIRECT"]
CONST_NAMES = ["LIMIT", "MASK"]
CSUM_HELPERS = ("csum_fold", "csum_replace16", "csum_replace32", "ipv4_checksum")
RINGBUF_BYTES = 4096    # the ring buffers the generator declares: one page, the smallest
# A tail grown by exactly the room a test run's frame has left, whatever its length
ROOM = f"i32({MAX_TEST_FRAME}) - i32(pkt.len)"
RESERVED = set(keyword.kwlist) | {"min", "max", "range", "bool", "int", "pkt", "self", "atomic_add",
                                  "atomic_xchg", "atomic_cas", "now_ns", "cpu_id", "random_u32",
                                  "ETH_P_IP", "IPPROTO_UDP",
                                  "IPPROTO_TCP", "Trace", "traces", "Deadline", "deadlines",
                                  "ports", "xsks", "on_deadline", "timer", "Timer",
                                  "Header", "Struct", "Packet"} | set(ACTIONS) | set(CSUM_HELPERS)

# The trace: one map value with a field of every integer type (and a sequence number and a
# flag), looked up at the top of every hook. Its fields are inputs the test fills with edge
# values, and the probes (`ProgramGen.s_trace`) store operator results back into it, so what
# an operator computes on runtime data reaches the map contents the test compares.
TRACE_FIELDS = (("wide", U64), ("swide", I64), ("word", U32), ("sword", I32), ("half", U16),
                ("shalf", I16), ("byte", U8), ("sbyte", I8), ("seq", BE32), ("flag", BOOL))
TIMER = Plain("Timer", 16, 8)
# Operators a probe draws uniformly (each needs the feature after it), so that every one is
# compiled on runtime values in most programs.
PROBE_OPS = (("+", "arith"), ("-", "arith"), ("*", "arith"), ("&", "arith"), ("|", "arith"),
             ("^", "arith"), ("//", "division"), ("%", "division"), ("<<", "shifts"),
             (">>", "shifts"), ("neg", "unary"), ("inv", "unary"), ("min", "minmax"),
             ("max", "minmax"), ("cast", "casts"), ("cond", "branches"), ("atomic", "atomics"),
             ("csum", "csum"), ("checksum", "checksum"), ("call", "functions"),
             ("test", "compare"))
PROBE_TESTS = (("cmp", "compare"), ("cmp", "compare"), ("seq", "seq"), ("bcast", "casts"),
               ("timer", "timers"), ("effect", "maps"))


def edge_values(t: Int) -> list[int]:
    """The values of `t` where implementations diverge: 0, 1, -1, the extremes and their
    neighbours, the width and its neighbours (shift counts), the sign bit, 2**32 - 1..."""
    w = t.bits
    vals = [0, 1, -1, 2, t.lo, t.hi, t.lo + 1, t.hi - 1, w - 1, w, w + 1, 2 * w, -2,
            1 << (w - 1), (1 << (w // 2)) - 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 3, 7]
    return [v for v in dict.fromkeys(vals) if t.fits(v)]


class MapOnlyStruct(StructDef):
    """A struct holding a `Timer`: like one holding a SpinLock, it lives only in its map
    (passed by reference, built only as the value of a map update)."""

    @property
    def has_lock(self) -> bool:
        return True

    @property
    def timer(self) -> str:
        return next(n for n, t in self.fields if t is TIMER)


T = TypeVar("T")


def _value_first(method: Callable[[ProgramGen], T]) -> Callable[[ProgramGen], T]:
    """A statement that stores: its value is generated with resizes and map updates off."""
    return functools.wraps(method)(lambda self: self.no_resize(lambda: method(self)))


class ProgramGen(ExprGen):
    def __init__(self, draw_int: Any, max_statements: int, features: frozenset[str]) -> None:
        super().__init__(draw_int)
        self.budget, self.features = max_statements, features
        self.used, self.imports, self.called = set(), set(), set()
        self.structs, self.maps, self.funcs, self.consts = [], [], [], []
        self.headers: list[StructDef] = []            # custom Header classes
        self.std = _builtin_headers()
        self.func_text: list[str] = []                # functions and hooks, rendered
        self.hooks: list[str] = []
        self.reserved = RESERVED | set(self.std)
        self.ctx = FnCtx("<module>", False, False, None)
        self.trace: MapDef | None = None             # the map probes store into
        self.timed: MapDef | None = None             # the map whose values hold a Timer
        self.redirects: list[tuple[str, str]] = []   # (name, kind) of DevMaps and XskMaps
        self.decks: dict[str, list[str]] = {}         # see `deal`
        self.starts = 0                               # Timer starts in the current hook

    # ---------------------------------------------------------------- the module
    def generate(self) -> GeneratedProgram:
        self.declare_constants()
        self.declare_structs()
        self.declare_maps()
        self.declare_timers()
        self.declare_trace()
        self.declare_redirects()
        self.declare_methods()
        if self.on("functions"):
            share = self.budget * 2 // 5            # most statements go to the hooks
            for _ in range(self.num(0, 3)):
                if share >= 3:
                    before = self.budget
                    self.capped(min(share, 8), self.define_function)
                    share -= before - self.budget
        n = self.num(1, 2)
        for i in range(n):
            self.define_hook(HOOK_NAMES[i], last=(i == n - 1))
        if self.timed is not None:
            self.define_timer_handler(self.timed)
        return GeneratedProgram(self.render(), tuple(self.hooks), frozenset(self.used & FEATURES))

    def declare_constants(self) -> None:
        if not self.on("constants"):
            return
        for name in CONST_NAMES[:self.num(0, 2)]:
            t = self.pick([None, U32, U16, I32])
            v = self.num(0, 5000) if t is None or not t.signed else self.num(-100, 100)
            if t is not None and self.chance(40):
                v = self.pick(edge_values(t))
            self.consts.append(ConstDef(name, t, v, self.folded(v) if t is None else None))
            self.reserved.add(name)

    def folded(self, v: int) -> str | None:
        """Sometimes an untyped constant is written as two literals the checker folds, with
        the language's corners of exact folding: a zero right operand (`v + 0`, `v << 0`),
        a division that is exact or not."""
        if not self.chance(40):
            return None
        return str(self.pick([f"{v} + 0", f"{v} - 0", f"{v} | 0", f"{v} ^ 0", f"{v} << 0",
                              f"{v} >> 0", f"{v + 7} - 7", f"{v * 3} // 3", f"{v * 5 + 4} // 5",
                              f"{v} * 1",
                              f"{v + 1000} % 1000" if v < 1000 else f"{v} % {v + 1}"]))

    def storage(self, header: bool, key: bool) -> Any:
        arrays = self.on("arrays") and not key
        nested = [s for s in self.structs if not s.has_lock] if self.on("structs") and not key else []
        kind = self.choose([(6, "int"), (2, "bool"), (2, "be"), (2 if arrays else 0, "arr"),
                            (1 if nested and not header else 0, "nested")])
        if kind == "int":
            return self.pick([U8, U16, I16] if header else INTS) if header or self.on("structs") \
                else self.pick([U32, U64])
        if kind == "bool":
            return BOOL
        if kind == "be":
            return self.pick([BE16, BE32] if header else [BE16, BE32, BE64])
        if kind == "arr":
            return Arr(self.pick([U8, BE16] if header else [U32, U8, U16, BE16, I64, BOOL]), self.num(2, 6))
        return self.pick(nested)

    def new_struct(self, header: bool = False, key: bool = False, lock: bool = False) -> StructDef:
        pool = HEADER_NAMES if header else STRUCT_NAMES
        name = next(n for n in pool + [f"{pool[0]}{i}" for i in range(20)]
                    if n not in self.reserved and not (key and n == "Flow"))
        name = name + "Key" if key and name + "Key" not in self.reserved else name
        self.reserved.add(name)
        fields: list[tuple[str, Any]] = [("lock", LOCK)] if lock else []
        names = iter([n for n in FIELD_NAMES if n != "lock"])
        for _ in range(self.num(1, 3 if key else 5)):
            fields.append((next(names), U64 if lock and self.chance(30) else self.storage(header, key)))
        if lock and self.chance(30):
            fields.append(fields.pop(0))      # the lock need not come first
        s = StructDef(name, header, fields)
        (self.headers if header else self.structs).append(s)
        return s

    def declare_structs(self) -> None:
        if self.on("maps") or self.on("queue") or self.on("ringbuf") or self.on("structs"):
            for _ in range(self.num(1, 3)):
                self.new_struct()
        if self.on("headers") and self.on("packets"):
            for _ in range(self.num(0, 2)):
                self.new_struct(header=True)

    def declare_maps(self) -> None:
        maps, perc = self.on("maps"), self.on("maps") and self.on("percpu")
        kinds = [(4 * maps, "HashMap"), (3 * maps, "ArrayMap"), (perc, "PerCpuArray"),
                 (maps and self.on("lru"), "LruHashMap"), (perc, "PerCpuHashMap"),
                 (self.on("queue"), "Queue"), (self.on("ringbuf"), "RingBuf")]
        values = list(self.structs)     # (lock structs are made for a map, below)
        if not values or not any(w for w, _ in kinds):
            return
        for _ in range(self.num(1, 4)):
            kind = self.choose([(int(w), k) for w, k in kinds])
            if kind in ("HashMap", "ArrayMap") and self.on("locks") and self.chance(30):
                value = self.new_struct(lock=True)
            else:
                value = self.pick(values)
            key: Any = None
            if kind in ("HashMap", "LruHashMap", "PerCpuHashMap"):
                key = self.new_struct(key=True) if self.chance(35) else self.pick([U32, U16, U8, U64, I32])
            entries = {"HashMap": self.pick([64, 8, 4]), "LruHashMap": 4096, "PerCpuHashMap": 64,
                       "ArrayMap": self.num(1, 8), "PerCpuArray": self.num(1, 4),
                       "Queue": self.pick([8, 2]), "RingBuf": RINGBUF_BYTES}[kind]
            name = MAP_NAMES[kind]
            while name in self.reserved:
                name = name + "2" if not name[-1].isdigit() else name[:-1] + str(int(name[-1]) + 1)
            self.reserved.add(name)
            self.maps.append(MapDef(name, kind, key, value, entries))

    def declare_timers(self) -> None:
        """Sometimes a map whose values hold a `Timer`, with its `@timer` handler."""
        if not (self.on("timers") and self.on("maps") and self.chance(45)):
            return
        fields: list[tuple[str, Any]] = [("rto", TIMER)]
        names = iter(["count", "due", "sent", "acked"])
        for _ in range(self.num(1, 3)):
            fields.append((next(names), self.pick([U32, U64, I32, I64, U16])))
        if self.chance(40):
            fields.append(fields.pop(0))        # the timer need not come first
        value = MapOnlyStruct("Deadline", False, fields)
        self.structs.append(value)
        kind = self.choose([(3, "ArrayMap"), (2, "HashMap"), (1, "LruHashMap")])
        key = None if kind == "ArrayMap" else self.pick([U32, U16])
        entries = self.num(1, 4) if kind == "ArrayMap" else 64
        self.timed = MapDef("deadlines", kind, key, value, entries)
        self.maps.append(self.timed)

    def declare_trace(self) -> None:
        """The trace map probes store into (see TRACE_FIELDS)."""
        if not (self.on("trace") and self.on("maps") and self.on("structs")):
            return
        value = StructDef("Trace", False, list(TRACE_FIELDS))
        self.structs.append(value)
        self.trace = MapDef("traces", "ArrayMap", None, value, 1)
        self.maps.append(self.trace)

    def declare_redirects(self) -> None:
        if not (self.on("redirect") and self.on("actions") and self.chance(25)):
            return
        for name, kind in [("ports", "DevMap"), ("xsks", "XskMap")][:self.num(1, 2)]:
            self.redirects.append((name, kind))

    def declare_methods(self) -> None:
        if not self.on("functions"):
            return
        for s in self.structs + self.headers:
            if not self.chance(25):
                continue
            ret = self.pick([U32, U64, I32, BOOL])
            name = next(n for n in ["total", "span", "weight", "level"] if all(n != f for f, _ in s.fields))
            # pure all through: an index drawn inside (`self.count[cpu_id()]`) would make a
            # method that calls a helper, which a caller holding a lock may call
            self.ctx = FnCtx(f"{s.name}.{name}", False, False, ret, pure=True)
            self.ctx.frames[0].vars["self"] = Var("self", s, origin="param", view=s.header)
            e = self.bool_expr(2, pure=True) if ret is BOOL else self.int_expr(ret, 2, ret, pure=True)
            s.methods.append(MethodDef(name, ret, None, f"return {e.text}"))

    # ---------------------------------------------------------------- functions and hooks
    def define_function(self) -> None:
        name = next(n for n in FUNC_NAMES + [f"helper{i}" for i in range(9)] if n not in self.reserved)
        self.reserved.add(name)
        params: list[tuple[str, Any]] = []
        if self.on("packets") and self.chance(35):
            params.append(("pkt", "pkt"))
        lock_structs = [m.value for m in self.maps if m.value.has_lock]
        struct_pool = [s for s in self.structs if not s.has_lock] + self.headers + lock_structs
        pnames = iter(["a", "b", "c", "d"])
        for _ in range(self.num(0, 3)):
            params.append((next(pnames), self.pick([U32, I32, U8, U64, I64, BOOL, U16])))
        if struct_pool and self.on("structs"):
            for _ in range(self.num(0, 2)):
                s = self.pick(struct_pool)
                pname = s.name.lower()
                if all(pname != p for p, _ in params):
                    params.append((pname, s))
        returns = self.pick([U32, None, BOOL, I32, U64, U8])
        ctx = self.ctx = FnCtx(name, False, "pkt" in [t for _, t in params], returns)
        ctx.used_names = {p for p, _ in params}
        for p, t in params:     # a struct parameter may point into any hash map holding its type
            if t != "pkt":
                ctx.frames[0].vars[p] = Var(p, t, origin="param", view=getattr(t, "header", False),
                                            into=ctx.into(m for m in self.maps if m.value is t))
        body, done = self.block(self.budget, frame=False)
        if not done:
            body.append(self.return_line())
        sig = ", ".join(f"{p}: {'Packet' if t == 'pkt' else t.name}" for p, t in params)
        ret = returns.name if returns is not None else "None"
        self.func_text.append(f"def {name}({sig}) -> {ret}:\n" + _indent(body))
        self.funcs.append(FuncDef(name, params, returns, ctx.depth, ctx.helpers, ctx.locks,
                                  ctx.resizes, ctx.stack, ctx.forks, frozenset(ctx.updates)))

    def define_hook(self, name: str, last: bool) -> None:
        self.ctx = FnCtx(name, True, True, U32)
        self.hooks.append(name)
        self.starts = 0
        head = self.trace_prologue()
        if head and self.on("checksum") and self.chance(30):
            sums = [p for p in self.trace_targets() if isinstance(self.value_type(p[1]), Int)
                    and self.value_type(p[1]).holds(U32)]
            e = self.checksum_probe() if sums else None
            if e is not None:       # here, before paths multiply: its walk is paid once
                head.append(f"{self.pick(sums)[0]} ^= {e.text}")
                self.budget -= 1
        if self.timer_refs() and self.chance(60):       # a Timer used on every run
            head += self.timer_use(self.pick(self.timer_refs()))
            self.budget -= 1
        for _ in range(self.num(3, 7) if head else 0):    # probes on the inputs first
            head += self.s_trace() or []
            self.budget -= 1
        body, done = self.block(self.budget if last else max(1, self.budget * 2 // 3), frame=False)
        if not done:
            body += self.trace_flush()
            body.append(self.return_line())
        self.func_text.append(f"@xdp\ndef {name}(pkt: Packet) -> int:\n" + _indent(head + body))

    def trace_prologue(self) -> list[str]:
        """`out = traces.get(0)`, checked: the trace is in scope for the whole hook."""
        m = self.trace
        if m is None or self.chance(8):     # the plainest draw keeps it
            return []
        c = self.ctx
        v = self.declare(Var(self.fresh("out"), m.value, optional=True, origin="map", map=m))
        c.frames[-1].narrowed.add(id(v))
        c.stack += 8
        c.helpers = True
        self.use("trace", "maps")
        lines = [f"{v.name} = {m.name}.get(0)", f"if {v.name} is None:",
                 f"    return {self.pick(['XDP_PASS', 'XDP_DROP'])}"]
        t = self.timed
        if t is not None and not self.chance(25):       # an entry whose Timer probes use
            d = self.declare(Var(self.fresh("deadline"), t.value, optional=True, origin="map", map=t))
            c.frames[-1].narrowed.add(id(d))
            c.stack += 8 if t.is_array else 24
            k = self.num(0, t.max_entries - 1 if t.is_array else 3)
            exit = f"return {self.pick(['XDP_PASS', 'XDP_DROP'])}"
            lines += [f"{d.name} = {t.name}.get({k})"]
            if not t.is_array:              # a hash map's entry is made if missing
                c.updated(t)
                d.into = c.into([t])
                lines += [f"if {d.name} is None:", f"    {t.name}.set({k}, {t.value.name}())",
                          f"    {d.name} = {t.name}.get({k})"]
                exit = "    " + exit
            lines += [f"{'    ' if not t.is_array else ''}if {d.name} is None:", f"    {exit}"]
        return lines

    def trace_flush(self) -> list[str]:
        """Before the hook's last return, a few of its integer variables folded into the
        trace (`out.word ^= acc`): values computed along the way are observed, not dropped."""
        if self.trace is None:
            return []
        fields = [p for p in self.places(lambda t: isinstance(t, Int))
                  if p[2].type is self.trace.value and p[2].origin == "map"]
        local = [v for v in self.scalar_vars(lambda t: isinstance(t, Int)) if v.origin == "local"]
        lines = []
        for _ in range(min(len(local), 3) if fields else 0):
            v = self.pick(local)
            text, t, _ = self.pick(fields)
            value = v.name if t.holds(v.type) else f"{t.name}({v.name})"
            lines.append(f"{text} ^= {value}")
        if lines:
            self.use("trace")
        return lines

    def define_timer_handler(self, m: MapDef) -> None:
        """`@timer(Deadline.rto) def on_deadline(key, value) -> None` (never run by the
        differential tests, which fire no timers: a small body)."""
        s = m.value
        assert isinstance(s, MapOnlyStruct)
        key = "u32" if m.key is None else m.key.name
        ints = [f for f, t in s.fields if isinstance(t, Int)]
        body = f"value.{ints[0]} += 1" if ints else "pass"
        self.func_text.insert(0, f"@timer({s.name}.{s.timer})\n"
                                 f"def on_deadline(key: {key}, value: {s.name}) -> None:\n"
                                 f"    {body}\n")

    def return_line(self) -> str:
        r = self.ctx.returns
        if self.ctx.hook:
            return f"return {self.action()}"
        if r is None:
            return "return"
        if r is BOOL:
            return f"return {self.bool_value(2).text}"
        return f"return {self.int_expr(r, 2, r).text}"  # type: ignore[arg-type]

    def action(self) -> str:
        if self.redirects and self.chance(25):
            name, _ = self.pick(self.redirects)
            self.use("redirect", "actions")
            self.ctx.helpers = True
            kind = self.choose([(2, "lit"), (3, "mask"), (1, "raw")])
            key = lit_text(self.num(0, 4)) if kind == "lit" else self.runtime(U32)
            if kind == "mask":
                key = binop("&", key, lit_text(3), key.type)
            return f"{name}.redirect({key.text}, {self.pick(ACTIONS[:2])})"
        acts = ACTIONS if self.on("actions") else ACTIONS[:2]
        self.use("actions")
        if self.on("branches") and self.chance(20):
            c = self.bool_expr(1)
            self.use("branches")
            return f"{self.pick(acts)} if {c.text if c.prec > 0 else '(' + c.text + ')'} else {self.pick(acts)}"
        return str(self.pick(acts))

    # ---------------------------------------------------------------- blocks
    def fresh(self, base: str) -> str:
        used = self.ctx.used_names
        name, i = base, 2
        while name in used or name in self.reserved:
            name, i = f"{base}{i}", i + 1
        used.add(name)
        return name

    def declare(self, v: Var) -> Var:
        v.depth = len(self.ctx.frames) - 1
        self.ctx.frames[-1].vars[v.name] = v
        return v

    def block(self, max_stmts: int, frame: bool = True, narrow: Var | None = None
              ) -> tuple[list[str], bool]:
        """Statements until a draw says stop; returns their lines and whether the block always exits."""
        c = self.ctx
        if frame:
            c.frames.append(Frame(narrowed={id(narrow)} if narrow else set()))
        lines: list[str] = []
        done = False
        try:
            n = 0
            while n < max_stmts and self.budget > 0 and (n == 0 or self.chance(85)):
                stmt, done = self.statement()
                lines += stmt
                n += 1
                if done:
                    break
        finally:
            if frame:
                c.frames.pop()
        return (lines or ["pass"]), done

    def capped(self, cap: int, make: Callable[[], T]) -> T:
        """Run `make` spending at most `cap` of the remaining statements (loop bodies stay small)."""
        total, allowance = self.budget, min(self.budget, cap)
        self.budget = allowance
        try:
            return make()
        finally:
            self.budget = total - (allowance - self.budget)

    def capped_block(self, cap: int, max_stmts: int) -> tuple[list[str], bool]:
        return self.capped(cap, lambda: self.block(max_stmts))

    def exits(self) -> list[str]:
        c = self.ctx
        if c.lock is not None:
            return []
        return ["return"] + (["break", "continue"] if c.loops else [])

    def exit_line(self) -> str:
        kind = self.pick(self.exits()[::-1])
        self.ctx.forks += kind == "return" and not self.ctx.hook    # each return value a path
        return kind if kind != "return" else self.return_line()

    def statement(self) -> tuple[list[str], bool]:
        for _ in range(4):
            kind = self.choose(self.options())
            r = getattr(self, "s_" + kind)()
            if r is not None:
                self.budget -= 1
                return r if isinstance(r, tuple) else (r, False)
        self.budget -= 1
        return self.s_decl(), False

    def options(self) -> list[tuple[int, str]]:
        c = self.ctx
        free = c.lock is None
        fits = [m for m in self.maps if self.room(3 * self.map_stack(m))]
        keyed = [m for m in fits if m.keyed] if self.on("maps") else []
        updatable = [m for m in keyed if c.can_update(m)]
        queues = [m for m in fits if m.kind == "Queue"] if self.on("queue") else []
        rings = [m for m in fits if m.kind == "RingBuf"] if self.on("ringbuf") else []
        unchecked = [v for v in c.vars() if v.optional and not c.narrowed(v) and c.alive(v)]
        big = self.budget >= 3 and len(c.frames) < 5 and len(c.frames) + 2 * len(c.loops) < 7
        hungry = 1 if len(self.refs()) >= 2 else 3      # few inputs in scope: read some first
        if c.loops:
            hungry = 1 if len(c.loops) == 1 else 0      # references taken in loops multiply paths
        return [
            (6, "decl"), (2 if self.on("branches") else 0, "bdecl"), (2, "assign"), (3, "aug"),
            (4, "store"), ((4 if c.forks < 5 else 1) if self.on("branches") and big else 0, "if"),
            ((2 if c.forks < 7 else 0) if self.on("loops") and free and len(c.loops) < 2 and big
             else 0, "loop"),
            (2 if c.loops and free and self.on("branches") else 0, "jump"),
            (4 * hungry if keyed and free else 0, "get"), (3 if updatable and free else 0, "update"),
            (1 if queues and free else 0, "push"), (2 if queues and free else 0, "pop"),
            (1 if rings and free else 0, "output"),
            (5 * hungry if self.on("packets") and c.has_pkt and free else 0, "view"),
            (6 if unchecked else 0, "check"),
            (1 if self.on("resize") and c.has_pkt and c.resize_ok and free else 0, "resize"),
            (3 if self.on("locks") and free and self.lockable() else 0, "lock"),
            (1 if self.on("atomics") else 0, "atomic"),
            ((6 if len(self.called) < len(self.funcs) else 2) if self.funcs else 0, "call"),
            (2 if self.on("structs") else 0, "struct"), (1 if self.on("structs") else 0, "copy"),
            ((2 if c.loops else 8) if self.on("trace") else 0, "trace"),
            (4 if self.timed is not None and self.on("timers") and free else 0, "timer"),
        ]

    # ---------------------------------------------------------------- simple statements
    def s_decl(self) -> list[str]:
        t = self.some_type()
        e = self.int_expr(t, 2, t)
        name = self.fresh(self.pick(INT_NAMES))
        if self.on("branches") and self.chance(4):   # two constants: typed by the annotation
            c = self.bool_expr(1)
            e = E(f"{self.literal(t).text} if {c.text if c.prec > 0 else '(' + c.text + ')'} "
                  f"else {self.literal(t).text}", 0, None)
        annotate = e.type is None or self.chance(40)     # an untyped value needs the annotation
        self.declare(Var(name, t if annotate else e.type))  # type: ignore[arg-type]
        return [f"{name}{': ' + t.name if annotate else ''} = {e.text}"]

    def s_bdecl(self) -> list[str]:
        e = self.bool_value(2)
        name = self.fresh(self.pick(BOOL_NAMES))
        self.declare(Var(name, BOOL))
        return [f"{name}{': bool' if self.chance(20) else ''} = {e.text}"]

    def s_assign(self) -> list[str] | None:
        vs = [v for v in self.scalar_vars(lambda t: True) if v.origin != "counter"]
        if not vs:
            return None
        v = self.pick(vs)
        e = self.bool_value(2) if v.type is BOOL else self.int_expr(v.type, 2, v.type)
        return [f"{v.name} = {e.text}"]

    def aug_op(self) -> str:
        # In a loop, division's hidden branches multiply the verifier's paths per iteration.
        div = self.on("division") and not (self.ctx.loops and self.chance(75))
        ops = (["+", "-", "*", "&", "|", "^"] if self.on("arith") else ["+"]) + \
            (["//", "%"] if div else []) + (["<<", ">>"] if self.on("shifts") else [])
        op: str = self.pick(ops)
        return op

    def no_resize(self, make: Callable[[], T]) -> T:
        """Run `make` with resizes and map updates off: a store's value is computed before its
        target (Python's order), so either would make a view or map-entry target stale."""
        c = self.ctx
        saved = c.resize_ok, c.update_ok
        c.resize_ok = c.update_ok = False
        try:
            return make()
        finally:
            c.resize_ok, c.update_ok = saved

    @_value_first
    def s_aug(self) -> list[str] | None:
        targets = [(v.name, v.type) for v in self.scalar_vars(lambda t: isinstance(t, Int))
                   if v.origin != "counter"]
        places = self.places(lambda t: isinstance(self.value_type(t), Int))
        if not targets and not places:
            return None
        if places and (not targets or self.chance(50)):
            text, t, _ = self.element(self.pick(places))
            target, t = text, self.value_type(t)
        else:
            target, t = self.pick(targets)
        op = self.aug_op()
        if op in ("<<", ">>"):
            self.use("shifts")
            e = lit_text(self.num(0, 70)) if self.chance(50) else self.typed(self.some_type(), 1)
        else:
            self.use("division" if op in ("//", "%") else "arith")
            e = self.int_expr(t, 2, t)
        return [f"{target} {op}= {e.text}"]

    @_value_first
    def s_store(self) -> list[str] | None:
        places = self.places(lambda t: True)
        if not places:
            return None
        text, t, base = self.element(self.pick(places))
        vt = self.value_type(t)
        e = self.bool_value(2) if vt is BOOL else self.int_expr(vt, 2, vt)
        self.use("packets" if base.view else "structs")
        return [f"{text} = {e.text}"]

    def s_struct(self) -> list[str] | None:
        pool = [s for s in self.structs + self.headers if not s.has_lock]
        if not pool:
            return None
        s = self.pick(pool)
        e = self.struct_value(s, 1)
        if e is None or e.text == s.name:
            return None
        name = self.fresh(s.name.lower()[:4] if len(s.name) > 4 else s.name.lower())
        var = Var(name, s, origin="stack")
        base = next((v for v in self.ctx.vars() if v.name == e.text.split(".")[0]), None)
        if base is not None and not e.text.startswith(s.name + "("):
            # `b = a` makes `b` refer to `a`'s memory: a view stays a view, a map value a map value
            var = Var(name, s, view=base.view, epoch=base.epoch, origin=base.origin, map=base.map,
                      into=dict(base.into))
        self.declare(var)
        return [f"{name} = {e.text}"]

    @_value_first
    def s_copy(self) -> list[str] | None:
        targets = self.places(lambda t: isinstance(t, (StructDef, Arr)), whole=True)
        if not targets:
            return None
        text, t, _ = self.pick(targets)
        if isinstance(t, StructDef):
            e = self.struct_value(t, 1)
        else:
            same = [p for p in self.places(lambda x: x == t, whole=True) if p[0] != text]
            e = E(self.pick(same)[0], 13, None) if same else None
        if e is None:
            return None
        self.ctx.stack += (t.size + 7) // 8 * 8
        self.use("structs")
        return [f"{text} = {e.text}"]

    def s_atomic(self) -> list[str] | None:
        return [self.atomic_expr(self.pick(ps)).text] if (ps := self.atomic_places(None)) else None

    def s_call(self) -> list[str] | None:
        fs = self.callable_funcs(lambda r: True, False)
        fresh = [f for f in fs if f.name not in self.called]
        return [self.call_expr(self.pick(fresh or fs), False).text] if fs else None

    # ---------------------------------------------------------------- control flow
    def s_if(self) -> tuple[list[str], bool]:
        """if/elif/else; an arm may end with an early exit (all arms exiting ends the block)."""
        self.use("branches")
        self.ctx.forks += 1
        lines: list[str] = []
        done_all = True

        def arm(head: str, max_stmts: int, exit_pct: int) -> None:
            nonlocal done_all
            body, done = self.capped_block(10, max_stmts)
            if not done and self.exits() and self.chance(exit_pct):
                body.append(self.exit_line())
                done = True
            lines.extend([head] + _indent_lines(body))
            done_all &= done
        for i in range(1 + (self.num(0, 2) if self.chance(25) else 0)):
            arm(f"{'if' if i == 0 else 'elif'} {self.bool_expr(2).text}:", 4, 35)
        if self.chance(40):
            arm("else:", 3, 20)
            return lines, done_all
        return lines, False

    def s_jump(self) -> list[str]:
        return [f"if {self.bool_expr(2).text}:", "    " + self.pick(["break", "continue"])]

    def s_loop(self) -> list[str]:
        self.use("loops")
        c = self.ctx
        form = self.choose([(4, "n"), (2, "min"), (1, "start"), (1, "step")])
        t: Int = U32
        outer = not c.loops      # paths multiply per iteration: inner loops stay short
        # A resize anywhere in the body makes older views stale in all of it, and in the
        # bound, which is evaluated again before every iteration.
        may_resize = self.on("resize") and c.resize_ok and c.has_pkt and self.chance(15)
        saved = c.resize_ok
        c.epoch += may_resize
        if form == "n":
            rng = f"range({self.pick([4, 2, 3, 8, 1, 16] if outer else [2, 3, 1, 4])})"
        elif form == "min":
            x = self.typed(self.pick(INTS), 1)
            t = x.type  # type: ignore[assignment]
            start = self.pick(["", "", "1, "])
            rng = f"range({start}min({x.text}, {self.pick([8, 4, 16] if outer else [4, 2])}))"
        elif form == "start":
            a = self.num(-3, 4)
            b = self.num(a, a + 6)
            t = I32 if min(a, b) < 0 else U32
            rng = f"range({a}, {b})"
        else:
            step = self.pick([2, 3, -1, -2])
            a, b = (self.num(0, 4), self.num(5, 12)) if step > 0 else (self.num(5, 12), self.num(-2, 4))
            t = I32 if min(a, b) < 0 else U32
            rng = f"range({a}, {b}, {step})"
        name = self.fresh(self.pick(["i", "j", "k"]))
        c.forks += 2
        c.resize_ok = may_resize
        c.loops.append(c.lock is not None)
        c.frames.append(Frame({name: Var(name, t, origin="counter")}))
        c.loop_frames.append(len(c.frames) - 1)
        try:
            body, _ = self.capped_block(6 if len(c.loops) == 1 else 3, 4)
        finally:
            c.frames.pop()
            c.loops.pop()
            c.loop_frames.pop()
            c.resize_ok = saved
        return [f"for {name} in {rng}:"] + _indent_lines(body)

    # ---------------------------------------------------------------- None checks
    def s_check(self, v: Var | None = None) -> list[str] | None:
        c = self.ctx
        if v is None:
            vs = [x for x in c.vars() if x.optional and not c.narrowed(x) and c.alive(x)]
            if not vs:
                return None
            v = self.pick(vs)
        self.use("none_checks")
        can_exit = bool(self.exits())
        styles = self.on("none_checks")
        kind = self.choose([(4 if can_exit else 0, "early"), (3 if can_exit and styles else 0, "or_early"),
                            (3, "block"), (2 if can_exit and styles else 0, "not_early"),
                            (1 if styles else 0, "truthy"), (2 if styles else 0, "and_block")])
        if kind in ("early", "not_early", "or_early"):
            test = f"{v.name} is None" if kind != "not_early" else f"not {v.name}"
            if kind == "or_early":
                test += f" or {self.field_test(v, negate=True)}"
            line = self.exit_line()
            c.frames[-1].narrowed.add(id(v))
            return [f"if {test}:", "    " + line]
        c.forks += 1
        head = {"block": f"{v.name} is not None", "truthy": v.name,
                "and_block": f"{v.name} is not None and {self.field_test(v, negate=False)}"}[kind]
        body, _ = self.block(3, narrow=v)
        lines = [f"if {head}:"] + _indent_lines(body)
        if self.chance(25):
            other, _ = self.block(2)
            lines += ["else:"] + _indent_lines(other)
        return lines

    def field_test(self, v: Var, negate: bool) -> str:
        """A condition on a checked value, e.g. `eth.proto != ETH_P_IP`."""
        std = {"Eth": ("proto", ["ETH_P_IP"]), "IPv4": ("protocol", ["IPPROTO_UDP", "IPPROTO_TCP"])}
        if isinstance(v.type, StructDef) and v.type.name in std and self.chance(60):
            f, consts = std[v.type.name]
            k = self.pick(consts)
            self.imports.add(k)
            return f"{v.name}.{f} {'!=' if negate else '=='} {k}"
        self.ctx.frames.append(Frame(narrowed={id(v)}))
        try:
            e = self.bool_expr(1)
        finally:
            self.ctx.frames.pop()
        return f"({e.text})" if e.prec <= 2 else e.text

    # ---------------------------------------------------------------- maps
    def s_get(self) -> list[str] | None:
        m = self.pick([m for m in self.maps if m.keyed and self.room(3 * self.map_stack(m))])
        self.use("maps", *self.map_features(m))
        self.ctx.helpers = True
        kind = self.choose([(1, "later"), (5, "check"), (1, "direct"),
                            (1 if not m.is_array and self.ctx.can_update(m) else 0, "insert")])
        k = self.key_expr(m)
        lines: list[str] = []
        if kind == "direct":    # the lookup's result tested where it is made, never named
            test = f"{m.name}.get({k.text}) is {self.pick(['', 'not '])}None"
            if self.exits() and self.chance(50):
                return [f"if {test}:", "    " + self.exit_line()]
            self.ctx.forks += 1
            body, _ = self.block(2)
            return [f"if {test}:"] + _indent_lines(body)
        if kind == "insert" and not k.text.isdigit():     # the key is used three times: name it
            key = self.declare(Var(self.fresh("key"), m.key, origin="stack"))
            ann = f": {m.key.name}" if isinstance(m.key, Int) else ""
            lines.append(f"{key.name}{ann} = {k.text}")
            k = E(key.name, 13, m.key)
        v = self.declare(Var(self.fresh(m.value.name.lower()), m.value, optional=True, origin="map",
                             map=m, into=self.ctx.into([m])))
        lines.append(f"{v.name} = {m.name}.get({k.text})")
        if kind == "check":
            lines += self.s_check(v) or []
        elif kind == "later":
            self.ctx.forks += 1     # a lookup tested later: both verifier states live until then
        elif kind == "insert":      # the key is read again after the value: no resize there
            value = self.no_resize(lambda: self.struct_value(m.value, 1, map_value=True))
            if value is None:
                return lines
            op = self.pick(["insert", "set"])
            self.ctx.updated(m)                 # other references to `m` are stale from here
            line = self.exit_line()
            self.ctx.stack += 16 if isinstance(m.key, Int) else 0      # integer keys: a slot each
            lines += [f"if {v.name} is None:", f"    {m.name}.{op}({k.text}, {value.text})",
                      f"    {v.name} = {m.name}.get({k.text})",
                      f"    if {v.name} is None:", f"        {line}"]
            v.into = self.ctx.into([m])
            self.ctx.frames[-1].narrowed.add(id(v))
        return lines

    def s_update(self) -> list[str] | None:
        m = self.pick([m for m in self.maps if m.keyed and self.room(3 * self.map_stack(m))
                       and self.ctx.can_update(m)])
        if self.chance(20) and self.exits():
            e = self.map_update_expr(m)
            return [f"if not {e.text}:", "    " + self.exit_line()]
        return [self.map_update_expr(m, statement=True).text]

    def s_push(self, kind: str = "Queue") -> list[str]:
        m = self.pick([m for m in self.maps if m.kind == kind and self.room(3 * self.map_stack(m))])
        e = self._value_call(m, "push" if kind == "Queue" else "output")
        if self.chance(25) and self.exits():
            return [f"if not {e.text}:", "    " + self.exit_line()]
        return [e.text]

    def s_output(self) -> list[str]:
        c = self.ctx
        if c.loops or not self.chance(50):
            return self.s_push("RingBuf")
        # A flood: records until the ring is full and a few more, so its last free bytes and
        # the refusals that follow are compared within one run (a ring holds RINGBUF_BYTES;
        # a record takes an 8-byte header and its value rounded up to 8).
        m = self.pick([m for m in self.maps if m.kind == "RingBuf" and self.room(3 * self.map_stack(m))])
        record = 8 + (m.value.size + 7) // 8 * 8
        n = min(RINGBUF_BYTES // record + self.pick([1, 2, 3]), 400)
        name = self.fresh("r")
        c.loops.append(False)
        c.frames.append(Frame({name: Var(name, U32, origin="counter")}))
        c.loop_frames.append(len(c.frames) - 1)    # a loop: a reference from before it goes
        try:                                       # stale at the next turn after an update
            e = self._value_call(m, "output")
        finally:
            c.loop_frames.pop()
            c.frames.pop()
            c.loops.pop()
        if self.chance(50):
            return [f"for {name} in range({n}):", f"    {e.text}"]
        return [f"for {name} in range({n}):", f"    if not {e.text}:", "        break"]

    def s_pop(self) -> list[str]:
        m = self.pick([m for m in self.maps if m.kind == "Queue" and self.room(3 * self.map_stack(m))])
        self.use("queue")
        self.ctx.helpers = True
        self.ctx.stack += (m.value.size + 7) // 8 * 8
        v = self.declare(Var(self.fresh("item"), m.value, optional=True, origin="pop"))
        lines = [f"{v.name} = {m.name}.pop()"]
        if self.chance(60):
            lines += self.s_check(v) or []
        return lines

    def lockable(self) -> list[Var]:
        return [v for v in self.refs() if not v.view and isinstance(v.type, StructDef)
                and any(t is LOCK for _, t in v.type.fields)]

    def s_lock(self) -> list[str]:
        """`with v.lock:` around field updates only (no helpers, no exits: the verifier's rules)."""
        v = self.pick(self.lockable())
        c = self.ctx
        c.lock, c.locks = v, True
        self.use("locks")
        try:
            body, _ = self.block(4)
        finally:
            c.lock = None
        return [f"with {v.name}.lock:"] + _indent_lines(body)

    # ---------------------------------------------------------------- packets
    def s_view(self, reuse: Var | None = None) -> list[str]:
        """`h = pkt.header(H, offset)`: the next header in the chain, or a custom one anywhere."""
        c = self.ctx
        ips = [v.name for v in self.refs() if v.view and v.type is self.std["IPv4"]]
        h = reuse.type if reuse is not None else \
            self.pick(list(self.std.values()) + (self.headers if self.on("headers") else []))
        assert isinstance(h, StructDef)
        l4 = f"Eth.size + {self.pick(ips)}.header_len()" if ips and self.chance(70) \
            else "Eth.size + IPv4.size"
        if h.builtin:
            off = {"Eth": "0", "IPv4": "Eth.size"}.get(h.name, l4)
            self.imports.add(h.name)
        else:
            self.use("headers")
            kind = self.choose([(2, "udp"), (2, "expr"), (1, "tail")])
            if kind == "expr":
                e = self.typed(self.pick([U32, U16, U8]), 1)
                off = binop("&", e, lit_text(63), e.type).text
            else:
                off = f"{l4} + Udp.size" if kind == "udp" else f"pkt.len - {h.name}.size"
        self.imports.update(n for n in ("Eth", "IPv4", "Udp") if n + "." in off)
        self.use("packets")
        if reuse is not None:           # the same name, taken again after a resize
            v = reuse
            v.epoch = c.epoch
            c.frames[-1].narrowed.discard(id(v))
        else:
            base = {"Eth": "eth", "IPv4": "ip", "Udp": "udp", "Tcp": "tcp"}.get(h.name, h.name.lower())
            v = self.declare(Var(self.fresh(base), h, optional=True, view=True, epoch=c.epoch,
                                 origin="view"))
        lines = [f"{v.name} = pkt.header({h.name}, {off})"]
        if self.chance(75):
            return lines + (self.s_check(v) or [])
        c.forks += 1            # a view tested later: both verifier states live until then
        return lines

    def s_resize(self) -> list[str]:
        c = self.ctx
        self.use("resize")
        where = self.pick(["tail", "head"])         # the head moves by constants only
        d = str(self.pick([4, -4, 8, 2, -14, 16, -8] if where == "head" else [-4, 4, 16, -20, 64, -1]))
        edge = self.chance(25)
        if edge:
            # at and past the limits: the head room of a test run (216), a shrink under an
            # Ethernet header, a tail grown by kilobytes (the frame's room is 3,520 bytes);
            # mostly tested, as whether it worked is what differs at a limit
            d = str(self.pick([216, 217, -40, 200] if where == "head"
                              else [3520, 3000, 4000, -60, -1500, ROOM, f"{ROOM} + 1"]))
        elif where == "tail" and self.chance(40):
            d = self.int_expr(self.pick([I16, I32]), 1, I32).text
        call = f"pkt.resize_{where}({d})"
        kind = self.choose([(1 if edge else 3, "stmt"), ((6 if edge else 3) if self.exits() else 0,
                            "exit"), (1, "bool")])
        c.epoch += 1        # from here on (the exit below included) older views are stale
        c.resizes = c.helpers = True
        if kind == "stmt":
            lines = [call]
        elif kind == "exit":
            lines = [f"if not {call}:", "    " + self.exit_line()]
        else:
            v = self.declare(Var(self.fresh("grown"), BOOL))
            lines = [f"{v.name} = {call}"]
        for v in list(c.frames[-1].vars.values()):
            if v.view and v.optional and v.epoch != c.epoch and self.chance(60):
                lines += self.s_view(reuse=v)
        return lines

    # ---------------------------------------------------------------- probes
    # A probe stores one operator's result on runtime values (fields the test fills with
    # edge values, packet fields, variables) into the trace, or another place the test
    # compares: the operators are drawn uniformly (PROBE_OPS), their second operands are
    # runtime values or edge constants (`edge_values`), so every operator is compiled on
    # values the checker cannot fold, at the corners of its type, and its result observed.
    def places(self, want: Callable[[Any], bool], whole: bool = False) -> list[tuple[str, Any, Var]]:
        return super().places(lambda t: t is not TIMER and want(t), whole)

    def trace_targets(self) -> list[tuple[str, Any, Var]]:
        ps = self.places(lambda t: isinstance(self.value_type(t), Int) or t is BOOL)
        mine = [p for p in ps if self.trace is not None and p[2].type is self.trace.value]
        return mine or [p for p in ps if p[2].view or p[2].origin in ("map", "param")]

    @_value_first
    def s_trace(self) -> list[str] | None:
        targets = self.trace_targets()
        if not targets:
            return None
        if self.trace is not None and targets[0][2].type is self.trace.value:
            name = "." + self.deal("fields", [n for n, _ in TRACE_FIELDS])    # all types in turn
            targets = [p for p in targets if p[0].endswith(name)] or targets
        text, t, _ = self.element(self.pick(targets))
        vt = self.value_type(t)
        self.use("trace")
        if vt is BOOL:
            return [f"{text} = {self.probe_bool().text}"]
        e = self.probe_int(vt) if self.chance(80) else self.int_expr(vt, 2, vt)
        # Folded in, mostly, not stored: a later probe of the field keeps this one's result.
        return [f"{text} {self.choose([(5, '^='), (3, '+='), (2, '=')])} {e.text}"]

    def runtime(self, t: Int, other: E | None = None) -> E:
        """A value assignable to `t` the checker cannot fold: a variable, a field, `pkt.len`...
        (preferably not the same as `other`, the operator's other operand)."""
        atoms = self.int_atoms(t)
        exact = [a for a in atoms if self._atom_type(a) == t]
        if exact and self.chance(50):   # the operator at `t`'s width, not a narrower one widened
            atoms = exact
        for _ in range(2 if atoms else 0):
            e: E = self.pick(atoms)()
            if not e.const and (other is None or e.text != other.text or len(atoms) == 1):
                return e
        return self.int_expr(t, 1)

    def _atom_type(self, atom: Callable[[], E]) -> Any:
        """The type an atom of `int_atoms` has, without drawing it."""
        if isinstance(atom, functools.partial):
            if atom.func is E:
                return atom.args[2]
            if atom.args and isinstance(atom.args[0], tuple):      # a place
                t = atom.args[0][1]
                return self.value_type(t.elem if isinstance(t, Arr) else t)
        return U32                      # pkt.len and friends

    def edge(self, t: Int) -> E:
        """An edge constant of `t`: half the time 0, 1, -1 or an extreme."""
        core = [v for v in (0, 1, -1, t.lo, t.hi) if t.fits(v)]
        return lit_text(self.pick(core if self.chance(50) else edge_values(t)))

    def deal(self, deck: str, cards: list[str]) -> str:
        """The next of `cards` from a shuffled deck, dealt again when used up: over a
        program's probes every operator comes up, not only the likeliest ones."""
        left = self.decks.get(deck)
        if not left:
            left = self.decks[deck] = list(cards)
        return left.pop(self.num(0, len(left) - 1))

    def probe_int(self, t: Int) -> E:
        pure = self.ctx.no_helpers
        ops = [op for op, f in PROBE_OPS if self.on(f)]
        for _ in range(3 if ops else 0):
            op = self.deal("ops", ops)
            e = self._probe(op, t, pure)
            if e is not None:
                return e
            self.decks["ops"].append(op)    # not possible here: for a later probe
        return self.int_expr(t, 2, t, pure)

    def _probe(self, op: str, t: Int, pure: bool) -> E | None:
        c = self.ctx
        if c.loops and op not in ("+", "-", "*", "&", "|", "^", "neg", "inv", "cast", "atomic"):
            return None     # branches hidden in an operator multiply the paths per iteration
        if op in ("+", "-", "*", "&", "|", "^", "//", "%"):
            self.use("division" if op in ("//", "%") else "arith")
            a = self.runtime(t)
            at: Int = a.type  # type: ignore[assignment]
            div = op in ("//", "%")
            kind = self.choose([(4, "runtime"), (4, "edge"), (2 if div else 0, "min"),
                                (2 if div else 0, "masked")])
            if kind == "min":       # MIN // x, x % MIN...: the divisor at run time
                b = a
                a = lit_text(at.lo if at.signed else at.hi)
                c.forks += 2 if at.signed else 1
                return binop(op, a, b, at) if self.chance(70) else binop(op, b, a, at)
            if kind == "runtime":
                b = self.runtime(t, a)
            elif kind == "masked":      # a runtime divisor that is often 0
                b = self.runtime(t, a)
                b = E(f"({binop('&', b, lit_text(self.pick([1, 3, 7])), b.type).text})",
                      PREC["atom"], b.type)
            elif div:                   # x // 0 == 0, x % 0 == x, MIN // -1 == MIN...
                b = lit_text(self.pick([v for v in (0, 0, -1, -1, 1, 2, 3, 7, -2, at.lo, at.hi)
                                        if at.fits(v)]))
            else:
                b = self.edge(at)
            typ = wider(at, b.type)  # type: ignore[arg-type]
            if div:                 # the lowering's fix-ups are branches: paths for the verifier
                c.forks += (2 if typ.signed else 1) if b.type is not None else typ.signed
            if b.type is None and not div and self.chance(30):
                a, b = b, a
            return binop(op, a, b, typ)
        if op in ("<<", ">>"):
            self.use("shifts")
            a = self.runtime(t)
            w = a.type.bits  # type: ignore[union-attr]
            n = self.runtime(self.some_type()) if self.chance(50) else \
                lit_text(self.pick([w - 1, w, w + 1, 2 * w, 0, 1, 63, 64, 65, 255]))
            c.forks += n.type is not None       # the count's test against the width
            return binop(op, a, n, a.type)
        if op in ("neg", "inv"):
            self.use("unary")
            a = self.runtime(t)
            inner = f"({a.text})" if a.prec <= PREC["unary"] else a.text
            return E(f"{'-' if op == 'neg' else '~'}{inner}", PREC["unary"], a.type)
        if op in ("min", "max"):
            if c.forks >= 10:
                return None
            self.use("minmax")
            c.forks += 1
            args = [self.runtime(t)]
            args += [self.runtime(t, args[-1]) for _ in range(self.num(1, 2))]
            types: list[Int] = [x.type for x in args]  # type: ignore[misc]
            if self.chance(30):
                args.insert(self.num(1, len(args)), self.edge(min(types, key=lambda x: x.bits)))
            return E(f"{op}({', '.join(x.text for x in args)})", PREC["atom"],
                     max(types, key=lambda x: x.bits))
        if op == "cast":            # narrowing, widening, sign changes
            self.use("casts")
            u = self.pick([x for x in INTS if t.holds(x)])
            x = self.runtime(self.pick(INTS))
            return E(f"{u.name}({x.text})", PREC["atom"], u)
        if op == "cond":
            if c.forks >= 10:
                return None
            self.use("branches")
            c.forks += 1
            test = self.probe_test(pure)
            a = self.runtime(t)
            b = self.runtime(t, a) if self.chance(50) else self.edge(a.type)  # type: ignore[arg-type]
            return E(f"{wrap(a, 1, True)} if {wrap(test, 1, True)} else {wrap(b, 1, True)}", 0,
                     wider(a.type, b.type))  # type: ignore[arg-type]
        if op == "test":            # a comparison kept as a number: `u8(x <= y)`
            if c.forks >= 10:
                return None
            c.forks += 1
            u = self.pick([x for x in INTS if t.holds(x)])
            return E(f"{u.name}({self.probe_test(pure).text})", PREC["atom"], u)
        if op == "atomic":
            ps = self.atomic_places(t) if not pure else []
            return self.atomic_expr(self.pick(ps)) if ps else None
        if op == "csum":
            return self.csum_expr(1, pure) if t.holds(U16) else None
        if op == "checksum":
            return self.checksum_probe() if not pure and t.holds(U32) else None
        fs = self.callable_funcs(lambda r: isinstance(r, Int) and t.holds(r), pure)
        return self.call_expr(self.pick(fs), pure) if fs else None

    def checksum_probe(self) -> E | None:
        """`pkt.checksum` over a range that is mostly inside the frame, with a runtime seed
        (the sum carries in each of its folds)."""
        c = self.ctx
        if not (self.on("checksum") and c.has_pkt and not c.loops and c.forks < 4
                and self.room(CHECKSUM_STACK)):
            return None
        self.use("checksum")
        c.helpers = True
        c.stack += CHECKSUM_STACK
        # The IPv4 header (a valid one sums to 0xFFFF: with a seed whose halves add up to
        # 0x10000, the sum is 0x1FFFF, the one value whose first fold carries), the frame,
        # the payload, a range at a runtime offset or of a runtime length.
        off, length = self.pick([("Eth.size", "IPv4.size"), ("Eth.size", "IPv4.size"), ("0", "pkt.len"),
                                 ("Eth.size + IPv4.size + Udp.size", "pkt.len"), ("&", "64"),
                                 ("14", "&")])
        if off == "&":
            off = binop("&", self.runtime(U32), lit_text(63), U32).text
        if length == "&":
            n = self.runtime(U32)
            n = n if n.type == U32 else E(f"u32({n.text})", PREC["atom"], U32)
            length = binop("&", n, lit_text(0xFFF), U32).text
        self.imports.update(n for n in ("Eth", "IPv4", "Udp") if n + "." in off + length)
        args = [off, length]
        if self.chance(75):
            args.append(self.runtime(U32).text if self.chance(40) else lit_text(self.pick(
                [0x1FFFF, 0xFFFF0001, 0x80008000, 0x1FFFF, 0xFFFF, 0xFFFFFFFF, 1])).text)
        return E(f"pkt.checksum({', '.join(args)})", PREC["atom"], U32)

    def probe_test(self, pure: bool) -> E:
        """A comparison (or sequence comparison) of runtime values, or with an edge value."""
        if self.on("seq") and self.chance(20):
            self.use("seq")
            a = self.runtime(U32)
            b = self.runtime(U32, a) if self.chance(50) else \
                lit_text(self.pick([0, 1, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 1]))
            name = self.pick(["seq_after", "seq_before", "seq_after_eq", "seq_before_eq"])
            return E(f"{name}({a.text}, {b.text})", PREC["atom"], BOOL)
        self.use("compare")
        s = self.pick(INTS) if self.chance(30) else self.some_type()
        a = self.runtime(s)
        kind = self.choose([(4, "runtime"), (4, "edge"), (2, "same")])
        if kind == "same":          # equal operands: `<=` and `>=` at equality
            b = a
        elif kind == "runtime":
            b = self.runtime(self.pick([x for x in INTS if x.signed == s.signed]), a)
        else:
            b = self.edge(a.type)  # type: ignore[arg-type]
        if self.chance(25):
            a, b = b, a
        op = self.pick(["==", "!=", "<", "<=", ">", ">="])
        return E(f"{wrap(a, 5)} {op} {wrap(b, 5)}", PREC["cmp"], BOOL)

    def probe_bool(self) -> E:
        """A bool kept as a value (see `bool_value` on why few): a probe's test, a Timer
        result, a map operation's success, `bool(x)`."""
        c = self.ctx
        pure = c.no_helpers
        if c.forks >= 8 or (c.loops and not self.chance(10)):
            return self.bool_value(2)
        tests = [k for k, f in PROBE_TESTS if self.on(f)]
        kind = self.deal("tests", tests) if tests else "cmp"
        if kind == "timer" and not pure and self.timer_refs():
            return self.timer_call(self.pick(self.timer_refs()))
        if kind == "effect" and not pure and (effects := self.bool_effects()):
            e: E = self.pick(effects)()
            return e
        c.forks += 1
        if kind == "bcast":
            self.use("casts")
            return E(f"bool({self.runtime(self.pick(INTS)).text})", PREC["atom"], BOOL)
        return self.probe_test(pure)

    # ---------------------------------------------------------------- timers, checksums
    def timer_refs(self) -> list[Var]:
        return [v for v in self.refs() if isinstance(v.type, MapOnlyStruct) and not v.view]

    def timer_call(self, v: Var) -> E:
        """`v.rto.start(delay)` or `v.rto.cancel()`: True on success / if it was armed."""
        assert isinstance(v.type, MapOnlyStruct)
        self.use("timers")
        self.ctx.helpers = True
        timer = f"{v.name}.{v.type.timer}"
        # A run records at most 8 starts (etran.lower.observe.MAX_TIMERS; the interpreter
        # records all): a few per hook, none in loops or functions, which may run often.
        c = self.ctx
        if self.chance(60) and c.hook and not c.loops and self.starts < 4:
            self.starts += 1
            wide: list[Callable[[], E]] = [functools.partial(E, v.name, PREC["atom"], U64)
                                           for v in self.scalar_vars(lambda t: t == U64)]
            wide += [functools.partial(self._place_atom, p)
                     for p in self.places(lambda ft: self.value_type(ft) == U64)]
            d = self.pick(wide)() if wide and self.chance(60) else self.runtime(U64)
            return E(f"{timer}.start({d.text})", PREC["atom"], BOOL)
        return E(f"{timer}.cancel()", PREC["atom"], BOOL)

    def bool_effects(self) -> list[Callable[[], E]]:
        out = super().bool_effects()
        if self.on("timers") and self.ctx.lock is None:
            out += [functools.partial(self.timer_call, v) for v in self.timer_refs()]
        return out

    def s_timer(self) -> list[str] | None:
        """A Timer started or cancelled, its result used; the entry looked up if need be."""
        refs = self.timer_refs()
        if refs and self.chance(70):
            return self.timer_use(self.pick(refs))
        m = self.timed
        if m is None or not self.room(3 * self.map_stack(m)):
            return None
        self.use("maps", *self.map_features(m))
        self.ctx.helpers = True
        k = self.key_expr(m)
        v = self.declare(Var(self.fresh("deadline"), m.value, optional=True, origin="map", map=m,
                             into=self.ctx.into([m])))
        self.ctx.forks += 1
        self.ctx.frames.append(Frame(narrowed={id(v)}))
        try:
            use = self.timer_use(v)
        finally:
            self.ctx.frames.pop()
        return [f"{v.name} = {m.name}.get({k.text})", f"if {v.name} is not None:"] + _indent_lines(use)

    def timer_use(self, v: Var) -> list[str]:
        e = self.timer_call(v)
        flags = [p for p in self.trace_targets() if self.value_type(p[1]) is BOOL]
        kind = self.choose([(2, "stmt"), (3 if flags else 0, "store"), (3, "if")])
        if kind == "store":
            return [f"{self.element(self.pick(flags))[0]} = {e.text}"]
        if kind == "if":
            self.ctx.forks += 1
            body = (self.s_trace() if self.on("trace") else None) or \
                ([self.exit_line()] if self.exits() else ["pass"])
            return [f"if {'not ' if self.chance(30) else ''}{e.text}:"] + _indent_lines(body)
        return [e.text]

    def index_expr(self) -> E:
        """As `ExprGen.index_expr`, with resizes and map updates off: the index is evaluated
        after its base, which either would make stale."""
        return self.no_resize(super().index_expr)

    def _i_div(self, t: Int, depth: int, pure: bool) -> E:
        if self.ctx.loops and self.chance(75):      # see `aug_op`
            return self._i_arith(t, depth, pure)
        return super()._i_div(t, depth, pure)

    def atomic_expr(self, place: tuple[str, Any, Var]) -> E:
        """`atomic_add(v.f, amount)`: the amount is computed before the add, so with map
        updates off (a call updating `v`'s map would leave `v` stale at the add)."""
        self.use("atomics")
        text, t, _ = self.element(place, runtime_pct=0)    # the element must provably exist
        return self.atomic_call(text, t, lambda: self.no_resize(lambda: self.int_expr(t, 1, t)))

    def int_expr(self, t: Int, depth: int, lit: Int | None = None, pure: bool = False) -> E:
        if depth > 0 and self.on("csum") and t.holds(U16) and self.chance(3):
            e = self.csum_expr(depth - 1, pure)
            if e is not None:
                return e
        return super().int_expr(t, depth, lit, pure)

    def csum_expr(self, depth: int, pure: bool) -> E | None:
        """The checksum helpers of etran.bpf_templates.headers (a `u16`)."""
        c = self.ctx
        pure = pure or c.no_helpers
        ip_ok = not pure and c.has_pkt and not c.loops and self.room(32)
        kind = self.choose([(3, "csum_fold"), (3, "csum_replace16"), (3, "csum_replace32"),
                            (1 if ip_ok else 0, "ipv4_checksum")])

        def arg(t: Int) -> str:
            return (self.runtime(t) if self.chance(50) else self.int_expr(t, depth, t, pure)).text
        if kind == "csum_fold":
            args = [arg(U32)]
        elif kind == "csum_replace16":
            args = [arg(U16), arg(U16), arg(U16)]
        elif kind == "csum_replace32":
            args = [arg(U16), arg(U32), arg(U32)]
        else:
            self.imports.add("Eth")
            off = "Eth.size" if self.chance(60) else binop("&", self.runtime(U32), lit_text(63), U32).text
            args = ["pkt", off]
            c.stack += 16
        self.imports.add(kind)
        self.use("csum")
        c.depth = max(c.depth, 3)
        return E(f"{kind}({', '.join(args)})", PREC["atom"], U16)

    # ---------------------------------------------------------------- rendering
    def render(self) -> str:
        out = ['"""A transport drawn by etran.testing.progen."""', "from etran.dsl import *"]
        names = sorted(self.imports, key=lambda n: (n.isupper(), n))
        if names:
            line = "from etran.bpf_templates.headers import " + ", ".join(names)
            if len(line) > 99:
                line = "from etran.bpf_templates.headers import (" + ",\n    ".join(names) + ")"
            out.append(line)
        if self.consts:
            out.append("")
            for cst in self.consts:
                ann = f": {cst.type.name}" if cst.type is not None else ""
                out.append(f"{cst.name}{ann} = {cst.text or cst.value}")
        for s in self.structs + self.headers:
            out += ["", "", f"class {s.name}({'Header' if s.header else 'Struct'}):"]
            out += [f"    {n}: {t.name}" for n, t in s.fields]
            for m in s.methods:
                out += ["", f"    def {m.name}(self) -> {m.returns.name}:", f"        {m.text}"]
        if self.maps or self.redirects:
            out.append("")
            out.append("")
            for mp in self.maps:
                args = ([mp.key.name] if mp.keyed and not mp.is_array else []) + [mp.value.name]  # type: ignore[union-attr]
                out.append(f"{mp.name} = {mp.kind}({', '.join(args)}, max_entries={mp.max_entries})")
            for name, kind in self.redirects:
                out.append(f"{name} = {kind}(max_entries=4)")
        for text in self.func_text:
            out += ["", "", text.rstrip("\n")]
        return "\n".join(out) + "\n"


def _indent_lines(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


def _indent(lines: list[str]) -> str:
    return "".join("    " + line + "\n" for line in lines)


# ---------------------------------------------------------------- what programs reach
def _corners() -> frozenset[str]:
    su = ("signed", "unsigned")
    out = {f"{op} {s}" for op in ("+", "-", "*", "//", "%", "&", "|", "^", "<<", ">>") for s in su}
    out |= {f"{op} {s} runtime divisor" for op in ("//", "%") for s in su}
    out |= {f"{op} {s} runtime count" for op in ("<<", ">>") for s in su}
    out |= {f"unary {op} {s}" for op in ("-", "~") for s in su}
    out |= {f"{op} {s}" for op in ("==", "!=", "<", "<=", ">", ">=") for s in su}
    out |= {f"{op} {s}" for op in ("min", "max") for s in su} | {"min/max of 3"}
    out |= {f"seq {op}" for op in ("<", "<=", ">", ">=")}
    out |= {f"convert {k}" for k in ("sign-extend", "zero-extend", "truncate", "sign change",
                                     "from bool")}     # `bool(x)` is `x != 0`
    out |= {"and", "or", "not", "x if c else y"}
    out |= {f"atomic_{op} {b} result" for op in ("add", "xchg", "cas") for b in (32, 64)}
    out |= {f"Timer.{m} result" for m in ("start", "cancel")}
    out |= {f"{m} runtime key" for m in ("get", "set", "insert", "replace", "delete")}
    out |= {"push", "pop", "output", "redirect DevMap", "redirect XskMap"}
    out |= {"pkt.checksum runtime seed", "pkt.checksum runtime range", "resize_head",
            "resize_tail", "pkt.header runtime offset"}
    out |= {f"call {f}" for f in CSUM_HELPERS}
    out |= {f"builtin {b}" for b in ("now_ns", "cpu_id", "random_u32", "pkt_len", "rx_queue",
                                     "ifindex")}
    out |= {f"const {t.name} {k}" for t in INTS for k in ("0", "1", "max")}
    out |= {f"const {t.name} {k}" for t in INTS if t.signed for k in ("min", "-1")}
    out |= {f"shift by {k} width" for k in ("the", "more than the")}
    out |= {"divisor 0", "divisor -1", "MIN // -1", "seq near 2**32", "runtime array index"}
    return frozenset(out)


# What `coverage` reports on programs of the generator: every operator, builtin and map
# method of the language on values read at run time (tests/property/test_progen.py
# checks that a fixed sample reaches all of them), and edge constants.
CORNERS = _corners()


def _fed(e: object) -> bool:
    """Whether `e` reads the inputs (packet, maps, helpers), so no compiler can fold it."""
    from etran.ir import tir
    stack = [e]
    while stack:
        n = stack.pop()
        if isinstance(n, (tir.Load, tir.Builtin, tir.Call, tir.Atomic, tir.PacketChecksum,
                          tir.MapSet, tir.MapDelete, tir.QueuePush, tir.RingOutput,
                          tir.TimerStart, tir.TimerCancel, tir.Redirect)):
            return True
        if not isinstance(n, tir.Const):
            stack.extend(tir.children(n))
    return False


def coverage(program: Any) -> set[str]:
    """The corners (names from CORNERS) a checked program (`etran.ir.tir.Program`) reaches
    in its hooks and the functions they call: an operator counts when its operand reads
    the inputs (not when the checker folded it, nor on literals only), a call's result
    when it is used."""
    from etran.ir import tir
    from etran.ir.types import BoolType, IntType
    seen: set[str] = set()
    todo = list(program.hooks)
    done: set[int] = set()

    def sign(t: Any) -> str:
        return "signed" if getattr(t, "signed", False) else "unsigned"

    def binary(op: str, t: Any, left_fed: bool, right: Any) -> None:
        if left_fed or _fed(right):
            seen.add(f"{op} {sign(t)}")
        if op in ("//", "%", "<<", ">>") and _fed(right):
            seen.add(f"{op} {sign(t)} runtime {'divisor' if op in ('//', '%') else 'count'}")
        if isinstance(right, tir.Const) and isinstance(t, IntType):
            v = right.value
            if op in ("<<", ">>") and v >= t.bits:
                seen.add(f"shift by {'the' if v == t.bits else 'more than the'} width")
            if op in ("//", "%") and v in (0, -1):
                seen.add(f"divisor {v}")
                if v == -1 and op == "//" and t.signed:
                    seen.add("MIN // -1")

    def expr(n: object, used: bool) -> None:
        if isinstance(n, tir.Binary):
            binary(n.op, n.type, _fed(n.left), n.right)
            if isinstance(n.left, tir.Const) and n.op == "//" and n.left.value == n.type.min \
                    and n.type.signed and _fed(n.right):
                seen.add("MIN // -1")
        elif isinstance(n, tir.Unary) and _fed(n.operand):
            seen.add(f"unary {n.op} {sign(n.type)}")
        elif isinstance(n, tir.Compare) and (_fed(n.left) or _fed(n.right)):
            left = n.left
            if isinstance(left, tir.Convert) and isinstance(left.operand, tir.Binary) and \
                    left.operand.op == "-" and left.span == n.span:
                seen.add(f"seq {n.op}")
                if any(isinstance(x, tir.Const) and x.value in (2**31 - 1, 2**31, 2**32 - 1)
                       for x in (left.operand.left, left.operand.right)):
                    seen.add("seq near 2**32")
            elif isinstance(left.type, IntType):
                seen.add(f"{n.op} {sign(left.type)}")
        elif isinstance(n, tir.Convert) and _fed(n.operand):
            src, dst = n.operand.type, n.type
            if isinstance(src, BoolType):
                seen.add("convert from bool")
            elif isinstance(src, IntType) and isinstance(dst, IntType):
                seen.add("convert " + ("truncate" if src.bits > dst.bits else "sign change"
                                       if src.bits == dst.bits and src.signed != dst.signed
                                       else "sign-extend" if src.bits < dst.bits and src.signed
                                       else "zero-extend" if src.bits < dst.bits else "same"))
        elif isinstance(n, tir.MinMax) and any(_fed(a) for a in n.args):
            seen.add(f"{n.op} {sign(n.type)}")
            if len(n.args) > 2:
                seen.add("min/max of 3")
        elif isinstance(n, tir.Logic):
            seen.add(n.op)
        elif isinstance(n, tir.Not):
            seen.add("not")
        elif isinstance(n, tir.Cond):
            seen.add("x if c else y")
        elif isinstance(n, tir.Atomic) and used:
            seen.add(f"atomic_{n.op} {n.type.bits} result")
        elif isinstance(n, (tir.TimerStart, tir.TimerCancel)) and used:
            seen.add(f"Timer.{'start' if isinstance(n, tir.TimerStart) else 'cancel'} result")
        elif isinstance(n, (tir.MapGet, tir.MapSet, tir.MapDelete)) and _fed(n.key):
            name = {tir.MapGet: "get", tir.MapDelete: "delete"}.get(type(n)) or \
                ("set", "insert", "replace")[n.flags]  # type: ignore[union-attr]
            seen.add(f"{name} runtime key")
        elif isinstance(n, (tir.QueuePush, tir.QueuePop, tir.RingOutput)):
            seen.add({tir.QueuePush: "push", tir.QueuePop: "pop", tir.RingOutput: "output"}[type(n)])
        elif isinstance(n, tir.Redirect):
            seen.add(f"redirect {n.map.kind}")
        elif isinstance(n, tir.PacketChecksum):
            if _fed(n.seed):
                seen.add("pkt.checksum runtime seed")
            if _fed(n.offset) or _fed(n.length):
                seen.add("pkt.checksum runtime range")
        elif isinstance(n, tir.PacketResize):
            seen.add(f"resize_{n.where}")
        elif isinstance(n, tir.PacketHeader) and _fed(n.offset):
            seen.add("pkt.header runtime offset")
        elif isinstance(n, tir.Builtin):
            seen.add(f"builtin {n.name}")
        elif isinstance(n, tir.Call):
            seen.add(f"call {n.func.name}")
            if id(n.func) not in done and n.func.module == program.name:
                todo.append(n.func)
        elif isinstance(n, tir.IndexPlace) and _fed(n.index):
            seen.add("runtime array index")
        elif isinstance(n, tir.Const) and isinstance(n.type, IntType):
            t = n.type
            for k, v in (("0", 0), ("1", 1), ("max", t.max), ("min", t.min), ("-1", -1)):
                if n.value == v:
                    seen.add(f"const {t.name} {k}")
        for child in tir.children(n):
            expr(child, not isinstance(n, tir.ExprStmt))

    while todo:
        fn = todo.pop()
        if id(fn) in done:
            continue
        done.add(id(fn))
        for s in fn.body:
            if isinstance(s, tir.Store) and s.op is not None:
                binary(s.op, s.place.type, True, s.value)
            expr(s, True)
    return seen

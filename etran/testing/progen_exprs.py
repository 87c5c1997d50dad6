"""Types, declarations, scopes and expressions for the random program generator.

`etran.testing.progen` draws random well-typed transports for property tests
(issue 4: the compiled program agrees with the reference interpreter, and what
the checker accepts the kernel verifier accepts). This module is everything
below the statement level:

* a small model of the language's types, enough to stay well-typed by
  construction without asking the compiler (programs go to the real compiler
  as text: the generator must not share its typing);
* the declarations a generated module makes and the scopes of a body being
  generated: names, None checks, packet views made stale by a resize, map
  references made stale by an update;
* `ExprGen`, which draws an expression of a requested type and renders it as
  Python source with the parentheses a person would write.

Typing rules mirrored from docs/language.md ("Integer rules"): an expression
*assignable to T* has T's signedness and at most T's width (widening is
implicit); an integer literal takes the type of the typed operand it meets and
must fit that type, so two literals never meet in an operator; signed and
unsigned never mix without a cast. Every choice goes through `ExprGen.num` (a
hypothesis draw, or a seeded random for campaigns), and the first option of each
choice is the simplest one, so failing programs shrink to short ones.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


# ---------------------------------------------------------------- types
@dataclass(frozen=True)
class Int:
    name: str
    bits: int
    signed: bool

    size = property(lambda self: self.bits // 8)
    align = size
    lo = property(lambda self: -(1 << (self.bits - 1)) if self.signed else 0)
    hi = property(lambda self: (1 << (self.bits - self.signed)) - 1)

    def fits(self, v: int) -> bool:
        return bool(self.lo <= v <= self.hi)

    def holds(self, other: Int) -> bool:
        """Whether `other` widens to this type implicitly."""
        return other.signed == self.signed and other.bits <= self.bits


@dataclass(frozen=True)
class Plain:
    """`bool` and `SpinLock`: storage with no integer arithmetic."""

    name: str
    size: int
    align: int


@dataclass(frozen=True)
class Be:
    """A big-endian field: read and written as the unsigned type of its width."""

    name: str
    bits: int

    size = property(lambda self: self.bits // 8)
    align = size

    @property
    def value(self) -> Int:
        return {8: U8, 16: U16, 32: U32, 64: U64}[self.bits]


@dataclass(frozen=True)
class Arr:
    elem: Int | Plain | Be
    n: int

    name = property(lambda self: f"Array[{self.elem.name}, {self.n}]")
    size = property(lambda self: self.elem.size * self.n)
    align = property(lambda self: self.elem.align)


U8, U16, U32, U64 = Int("u8", 8, False), Int("u16", 16, False), Int("u32", 32, False), Int("u64", 64, False)
I8, I16, I32, I64 = Int("i8", 8, True), Int("i16", 16, True), Int("i32", 32, True), Int("i64", 64, True)
INTS = (U32, U8, U16, U64, I32, I8, I16, I64)
BOOL, LOCK = Plain("bool", 1, 1), Plain("SpinLock", 4, 4)
BE16, BE32, BE64 = Be("be16", 16), Be("be32", 32), Be("be64", 64)


@dataclass(eq=False)
class StructDef:
    """A `Struct` (natural alignment) or `Header` (packed) the module declares or imports."""

    name: str
    header: bool
    fields: list[tuple[str, Any]]
    builtin: bool = False                       # from etran.bpf_templates.headers
    methods: list[MethodDef] = field(default_factory=list)

    @property
    def has_lock(self) -> bool:
        return any(t is LOCK for _, t in self.fields)

    @property
    def align(self) -> int:
        return 1 if self.header else max([t.align for _, t in self.fields] or [1])

    @property
    def size(self) -> int:
        off = 0
        for _, t in self.fields:
            a = 1 if self.header else t.align
            off = (off + a - 1) // a * a + t.size
        a = self.align
        return (off + a - 1) // a * a


@dataclass(eq=False)
class MethodDef:
    name: str
    returns: Int | Plain
    arg: Int | None = None          # Tcp.has(flag) takes a u8
    text: str = ""                  # rendered body for generated methods


@dataclass(eq=False)
class MapDef:
    name: str
    kind: str                       # HashMap, LruHashMap, PerCpuHashMap, ArrayMap, PerCpuArray, Queue, RingBuf
    key: Int | StructDef | None
    value: StructDef
    max_entries: int

    @property
    def keyed(self) -> bool:
        return self.kind not in ("Queue", "RingBuf")

    @property
    def is_array(self) -> bool:
        return self.kind in ("ArrayMap", "PerCpuArray")


@dataclass(eq=False)
class FuncDef:
    name: str
    params: list[tuple[str, Any]]   # (name, Int | Plain | StructDef | "pkt")
    returns: Int | Plain | None
    depth: int = 1                  # longest call chain starting here, itself included
    helpers: bool = False           # calls a kernel helper: not callable under a lock
    locks: bool = False
    resizes: bool = False
    stack: int = 0
    forks: int = 0                  # path splits inside: what a call adds to the caller's
    updates: frozenset[str] = frozenset()   # hash-like maps it updates (caller refs go stale)


@dataclass(frozen=True)
class ConstDef:
    name: str
    type: Int | None                # None: an untyped constant
    value: int
    text: str | None = None         # the source when not the value itself (`1200 + 0`)


# ---------------------------------------------------------------- scopes
REPLACING = ("HashMap", "LruHashMap", "PerCpuHashMap")     # updates replace the element


@dataclass(eq=False)
class Var:
    name: str
    type: Int | Plain | StructDef
    optional: bool = False          # a lookup, view or pop result: None until checked
    view: bool = False              # a packet view: stale after a resize
    epoch: int = 0
    origin: str = "local"           # local | map | view | stack | pop | param | counter
    map: MapDef | None = None       # the map whose value it is (a lookup result)
    into: dict[str, int] = field(default_factory=dict)  # hash-like maps it may point into, with
    depth: int = 0                  # their update counts when taken; and its declaring frame


@dataclass(eq=False)
class Frame:
    vars: dict[str, Var] = field(default_factory=dict)
    narrowed: set[int] = field(default_factory=set)     # ids of Vars checked not None here


@dataclass(eq=False)
class FnCtx:
    """The body being generated: its scopes and what it may still do."""

    name: str
    hook: bool
    has_pkt: bool
    returns: Int | Plain | None
    frames: list[Frame] = field(default_factory=lambda: [Frame()])
    epoch: int = 0
    lock: Var | None = None
    loops: list[bool] = field(default_factory=list)      # per open loop: opened under the lock?
    resize_ok: bool = True
    update_ok: bool = True          # map updates allowed here (not in a store's value)
    loop_frames: list[int] = field(default_factory=list)     # body frame of each open loop
    map_epochs: dict[str, int] = field(default_factory=dict)
    updates: set[str] = field(default_factory=set)
    used_names: set[str] = field(default_factory=set)
    stack: int = 0
    forks: int = 0          # branches whose arms both continue: verifier paths multiply
    depth: int = 1
    helpers: bool = False
    locks: bool = False
    resizes: bool = False
    pure: bool = False      # no helper anywhere (a method: callable under a lock)

    @property
    def no_helpers(self) -> bool:
        """No helper call may be drawn here: under a spin lock, or in a pure body."""
        return self.lock is not None or self.pure

    def vars(self) -> Iterator[Var]:
        seen: set[str] = set()
        for fr in reversed(self.frames):
            for name, v in fr.vars.items():
                if name not in seen:
                    seen.add(name)
                    yield v

    def narrowed(self, v: Var) -> bool:
        return not v.optional or any(id(v) in fr.narrowed for fr in self.frames)

    def alive(self, v: Var) -> bool:
        if any(self.map_epochs.get(m, 0) != e for m, e in v.into.items()):
            return False        # its map was updated since: the entry may be freed or replaced
        return not v.view or v.epoch == self.epoch

    def can_update(self, m: MapDef) -> bool:
        """Whether `m` may be updated here without leaving a reference stale where it is used.

        An update of a hash-like map makes references to its entries stale (the kernel
        replaces or frees the element). In a loop, a reference from before the loop would be
        stale in the next iteration, even where it is used before the update.
        """
        if m.kind not in REPLACING:
            return True
        if not self.update_ok:
            return False
        inner = self.loop_frames[-1] if self.loop_frames else 0
        return all(v.depth >= inner for v in self.vars()
                   if m.name in v.into and self.alive(v))

    def into(self, maps: Iterable[MapDef]) -> dict[str, int]:
        """What a reference that may point into `maps` records: their current update counts."""
        return {m.name: self.map_epochs.get(m.name, 0) for m in maps if m.kind in REPLACING}

    def updated(self, m: MapDef) -> None:
        if m.kind in REPLACING:
            self.map_epochs[m.name] = self.map_epochs.get(m.name, 0) + 1
            self.updates.add(m.name)


# ---------------------------------------------------------------- rendered expressions
PREC = {"if": 0, "or": 1, "and": 2, "not": 3, "cmp": 4, "|": 5, "^": 6, "&": 7, "<<": 8, ">>": 8,
        "+": 9, "-": 9, "*": 10, "//": 10, "%": 10, "unary": 11, "atom": 13}
BITWISE = {5, 6, 7, 8}


@dataclass(frozen=True)
class E:
    """A rendered expression: its text, precedence and type (None: an untyped literal)."""

    text: str
    prec: int
    type: Int | Plain | StructDef | None
    const: bool = False             # may fold to a constant (the checker folds typed constants too)


def wrap(e: E, need: int, strict: bool = False) -> str:
    return f"({e.text})" if e.prec < need or (strict and e.prec == need) else e.text


def binop(op: str, a: E, b: E, t: Any) -> E:
    p = PREC[op]
    const = a.const and b.const
    la, rb = wrap(a, p), wrap(b, p, strict=True)
    if p in BITWISE:    # a reader should not need the table: parenthesise mixed operators
        la = f"({a.text})" if 5 <= a.prec <= 10 and a.prec != p else la
        rb = f"({b.text})" if 5 <= b.prec <= 10 and b.prec != p else rb
    return E(f"{la} {op} {rb}", p, t, const)


def wider(a: Int, b: Int | None) -> Int:
    return a if b is None or a.bits >= b.bits else b


def lit_text(v: int) -> E:
    if v < 0:
        return E(f"-{lit_text(-v).text}", PREC["unary"], None, True)
    return E(str(v) if v < 4096 else hex(v).upper().replace("0X", "0x"), PREC["atom"], None, True)


INTERESTING = (0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 100, 127, 128, 255, 256, 1000,
               1448, 32767, 32768, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1,
               2**63, 2**64 - 1, -1, -2, -7, -128, -129, -32768, -2**31, -2**63)
CHECKSUM_STACK = 72  # `pkt.checksum`'s buffer, as the checker counts it
STACK_LIMIT = 360     # of the 512 bytes a hook may use: a margin for what is not counted here
ARITH = ("+", "-", "*", "&", "|", "^")
SHIFT_COUNTS = (0, 1, 2, 3, 7, 8, 15, 16, 31, 32, 33, 63, 64, 65, 127, 200)


class ExprGen:
    """Draws expressions in the current body (`self.ctx`); subclassed by the statement generator."""

    ctx: FnCtx
    structs: list[StructDef]
    maps: list[MapDef]
    funcs: list[FuncDef]
    consts: list[ConstDef]
    features: frozenset[str]
    used: set[str]
    imports: set[str]
    called: set[str]

    def __init__(self, draw_int: Callable[[int, int], int]) -> None:
        # Every choice: a hypothesis draw (shrinks), or a seeded random (campaigns).
        self.num: Callable[[int, int], int] = draw_int

    # ---------------------------------------------------------------- choices
    def pick(self, seq: Any) -> Any:
        seq = list(seq)
        return seq[self.num(0, len(seq) - 1)]

    def chance(self, pct: int) -> bool:
        """True with about `pct`% probability; shrinks to False."""
        return self.num(0, 99) >= 100 - pct

    def choose(self, options: list[tuple[int, str]]) -> str:
        """A weighted choice; shrinks towards the first option, which should be the simplest."""
        n = self.num(0, sum(w for w, _ in options) - 1)
        for w, k in options:
            if n < w:
                return k
            n -= w
        raise AssertionError("unreachable")

    def on(self, feature: str) -> bool:
        return feature in self.features

    def use(self, *features: str) -> None:
        self.used.update(features)

    # ---------------------------------------------------------------- places
    def refs(self) -> list[Var]:
        """Struct references usable here: checked, and not made stale by a resize."""
        c = self.ctx
        return [v for v in c.vars() if isinstance(v.type, StructDef) and c.narrowed(v) and c.alive(v)]

    def places(self, want: Callable[[Any], bool], whole: bool = False) -> list[tuple[str, Any, Var]]:
        """Fields of usable references whose storage type is wanted: scalars and arrays of
        scalars (to index), or with `whole` the struct and array fields themselves."""
        out: list[tuple[str, Any, Var]] = []

        def walk(text: str, s: StructDef, base: Var, depth: int) -> None:
            for name, t in s.fields:
                if whole and isinstance(t, (StructDef, Arr)) and want(t):
                    out.append((f"{text}.{name}", t, base))
                if isinstance(t, StructDef) and depth < 2:
                    walk(f"{text}.{name}", t, base, depth + 1)
                elif not (whole or isinstance(t, StructDef) or t is LOCK) and \
                        want(t.elem if isinstance(t, Arr) else t):
                    out.append((f"{text}.{name}", t, base))
        for v in self.refs():
            walk(v.name, v.type, v, 0)  # type: ignore[arg-type]
        return out

    def element(self, place: tuple[str, Any, Var], runtime_pct: int = 25) -> tuple[str, Any, Var]:
        """Materialise an array place with an index: a constant, or a runtime value (checked at run time)."""
        text, t, base = place
        if not isinstance(t, Arr):
            return place
        self.use("arrays")
        idx = str(self.num(0, t.n - 1))
        # A Header parameter may be a view or a stack value: its arrays take constant indexes.
        if self.chance(runtime_pct // 3 if base.view else runtime_pct) and \
                not (base.view and base.origin == "param"):
            counters = [v for v in self.scalar_vars(lambda t: True) if v.origin == "counter"]
            if counters and self.chance(50):
                # the counter, as unrolled loops index (etran.lower.unroll): in range or
                # past the array, or below 0 (wrapped, or negative)
                k = self.pick(counters).name
                idx = self.pick([k, k, f"{k} + 1", f"{k} * 2", f"{k} - 1", f"{t.n - 1} - {k}"])
            else:
                e = self.index_expr()
                if not e.const:         # a constant index must be in range (`bounds`)
                    idx = e.text
        return f"{text}[{idx}]", t.elem, base

    def index_expr(self) -> E:
        """A runtime index for `element`."""
        return self.int_expr(self.some_type(), 1, lit=None)

    @staticmethod
    def value_type(t: Any) -> Any:
        return t.value if isinstance(t, Be) else t

    def scalar_vars(self, want: Callable[[Any], bool]) -> list[Var]:
        return [v for v in self.ctx.vars() if (isinstance(v.type, Int) or v.type is BOOL) and want(v.type)]

    def some_type(self) -> Int:
        """An integer type, usually one that values in scope have (so expressions read inputs)."""
        have = [v.type for v in self.scalar_vars(lambda t: isinstance(t, Int))]
        have += [self.value_type(p[1].elem if isinstance(p[1], Arr) else p[1])
                 for p in self.places(lambda t: isinstance(self.value_type(t), Int))]
        have += [U32] if self.ctx.has_pkt else []
        if have and not self.chance(25):
            return self.pick(have)  # type: ignore[no-any-return]
        return self.pick(INTS)  # type: ignore[no-any-return]

    # ---------------------------------------------------------------- integers
    def literal(self, t: Int) -> E:
        consts = [c for c in self.consts if c.type is None and t.fits(c.value)]
        if consts and self.chance(15):
            self.use("constants")
            return E(self.pick(consts).name, PREC["atom"], None, True)
        if self.chance(50):
            return lit_text(self.num(max(t.lo, -8), min(t.hi, 300)))
        return lit_text(self.pick([v for v in INTERESTING if t.fits(v)]))

    def int_atoms(self, t: Int) -> list[Callable[[], E]]:
        """Typed values already in scope that widen to `t`: variables, fields, `pkt.len`..."""
        out: list[Callable[[], E]] = [
            functools.partial(E, v.name, PREC["atom"], v.type)
            for v in self.scalar_vars(lambda vt: isinstance(vt, Int) and t.holds(vt))]
        out += [functools.partial(self._place_atom, p)
                for p in self.places(lambda ft: isinstance(self.value_type(ft), Int)
                                     and t.holds(self.value_type(ft)))]
        out += [functools.partial(E, c.name, PREC["atom"], c.type, True)
                for c in self.consts if c.type is not None and t.holds(c.type)]
        if self.ctx.has_pkt and t.holds(U32):
            out.append(lambda: E(self.pick(["pkt.len", "pkt.len", "pkt.rx_queue", "pkt.ifindex"]),
                                 PREC["atom"], U32))
        return out

    def _place_atom(self, p: tuple[str, Any, Var]) -> E:
        text, t, base = self.element(p)
        self.use("packets" if base.view else "maps" if base.origin == "map" else "structs")
        return E(text, PREC["atom"], self.value_type(t))

    def typed(self, t: Int, depth: int, pure: bool = False) -> E:
        return self.int_expr(t, depth, None, pure)

    def int_expr(self, t: Int, depth: int, lit: Int | None = None, pure: bool = False) -> E:
        """An integer expression assignable to `t`; an untyped literal (fitting `lit`) only if `lit`."""
        pure = pure or self.ctx.no_helpers
        atoms = self.int_atoms(t)
        d = depth > 0
        calls = self.callable_funcs(lambda r: isinstance(r, Int) and t.holds(r), pure) if d else []
        methods = self.method_calls(lambda r: isinstance(r, Int) and t.holds(r)) if d else []
        atomics = self.atomic_places(t) if d and self.on("atomics") and not pure else []
        few = self.ctx.forks < 10
        kind = self.choose([
            (4 if lit else 0, "lit"), (12 if atoms else 0, "atom"), (1 if atoms else 4, "tcast"),
            (3 * d if self.on("casts") else 0, "cast"), (5 * d if self.on("arith") else 0, "arith"),
            (2 * d if self.on("division") else 0, "div"), (2 * d if self.on("shifts") else 0, "shift"),
            (1 * d if self.on("unary") else 0, "unary"), (1 * d if self.on("minmax") and few else 0, "minmax"),
            (1 * d if self.on("branches") and few else 0, "cond"), (2 if calls else 0, "call"),
            (2 if methods else 0, "method"),
            (1 if d and not pure and self.on("helpers") and t.holds(U32) else 0, "helper"),
            (1 if atomics else 0, "atomic"),
            (1 if d and not pure and self.checksum_ok(t) else 0, "checksum")])
        if kind == "lit":
            return self.literal(lit)  # type: ignore[arg-type]
        if kind in ("atom", "call", "method", "atomic"):
            if kind == "call":
                return self.call_expr(self.pick(calls), pure)
            if kind == "atomic":
                return self.atomic_expr(self.pick(atomics))
            return self.pick(atoms if kind == "atom" else methods)()  # type: ignore[no-any-return]
        return getattr(self, "_i_" + kind)(t, depth - 1, pure)  # type: ignore[no-any-return]

    def _i_tcast(self, t: Int, depth: int, pure: bool) -> E:
        """A typed constant, wrapping (`u8(300)`, `i8(-129)`)."""
        u = self.pick([x for x in INTS if t.holds(x)])
        v = self.literal(u) if self.chance(60) else lit_text(self.pick(INTERESTING))
        return E(f"{u.name}({v.text})", PREC["atom"], u, True)

    def _i_cast(self, t: Int, depth: int, pure: bool) -> E:
        """A conversion from any integer type (or a bool): narrowing, widening, sign changes."""
        self.use("casts")
        u = self.pick([x for x in INTS if t.holds(x)])
        inner = self.bool_value(depth, pure) if self.chance(10) else \
            self.typed(self.some_type(), depth, pure)
        return E(f"{u.name}({inner.text})", PREC["atom"], u, inner.const)

    def _i_arith(self, t: Int, depth: int, pure: bool, ops: tuple[str, ...] = ARITH) -> E:
        op = self.pick(ops)
        self.use("arith" if ops is ARITH else "division")
        a = self.typed(t, depth, pure)
        at: Int = a.type  # type: ignore[assignment]
        if ops is not ARITH and self.chance(40):      # divisors that may be zero, or -1
            b = lit_text(self.pick([v for v in (0, 1, -1, 2, 3, 7, 16, at.lo) if at.fits(v)]))
        else:
            b = self.int_expr(t, depth, at, pure)
        typ = wider(at, b.type)  # type: ignore[arg-type]
        if b.type is None and self.chance(30):
            a, b = b, a
        return binop(op, a, b, typ)

    def _i_div(self, t: Int, depth: int, pure: bool) -> E:
        return self._i_arith(t, depth, pure, ("//", "%"))

    def _i_shift(self, t: Int, depth: int, pure: bool) -> E:
        """Counts that may reach or pass the width, typed counts of any signedness."""
        self.use("shifts")
        a = self.typed(t, depth, pure)
        if self.chance(10):
            # a typed constant count with every bit set (`u8(255)`, `i16(-1)`): at its own
            # width it is past every shift's, and masked at a narrower one it would not be
            ct = self.pick(list(INTS))
            n = E(f"{ct.name}({-1 if ct.signed else (1 << ct.bits) - 1})", PREC["atom"], ct, True)
        elif self.chance(50):
            n = lit_text(self.pick(SHIFT_COUNTS))
        else:
            n = self.typed(self.some_type(), depth, pure)
        return binop(self.pick(["<<", ">>"]), a, n, a.type)

    def _i_unary(self, t: Int, depth: int, pure: bool) -> E:
        self.use("unary")
        a = self.typed(t, depth, pure)
        inner = f"({a.text})" if a.prec <= PREC["unary"] else a.text
        return E(f"{self.pick(['-', '~'])}{inner}", PREC["unary"], a.type, a.const)

    def _i_minmax(self, t: Int, depth: int, pure: bool) -> E:
        self.use("minmax")
        self.ctx.forks += 1             # a branch per extra argument (BPF has no select)
        n = self.num(2, 3)
        lits = [i for i in range(1, n) if self.chance(30)]
        args = [self.typed(t, depth, pure) for _ in range(n - len(lits))]
        types: list[Int] = [x.type for x in args]  # type: ignore[misc]
        for i in lits:          # a literal must fit every typed operand's type
            args.insert(i, self.literal(min(types, key=lambda x: x.bits)))
        return E(f"{self.pick(['min', 'max'])}({', '.join(x.text for x in args)})", PREC["atom"],
                 max(types, key=lambda x: x.bits), all(x.const for x in args))

    def _i_cond(self, t: Int, depth: int, pure: bool) -> E:
        self.use("branches")
        self.ctx.forks += 1
        c = self.bool_expr(depth, pure)
        a = self.typed(t, depth, pure)
        b = self.int_expr(t, depth, a.type, pure)  # type: ignore[arg-type]
        typ = wider(a.type, b.type)  # type: ignore[arg-type]
        if self.chance(30):
            a, b = b, a
        return E(f"{wrap(a, 1, True)} if {wrap(c, 1, True)} else {wrap(b, 1, True)}", 0, typ,
                 c.const and (a.const or b.const))

    def _i_helper(self, t: Int, depth: int, pure: bool) -> E:
        self.use("helpers")
        self.ctx.helpers = True
        h = self.pick(["random_u32()", "cpu_id()"] + (["now_ns()"] if t == U64 else []))
        return E(h, PREC["atom"], U64 if h == "now_ns()" else U32)

    def checksum_ok(self, t: Int) -> bool:
        """`pkt.checksum` where its ~12,000 instructions of verifier work are paid once: not
        in a loop, with the packet at hand and room for its 72-byte buffer."""
        c = self.ctx
        return (self.on("checksum") and c.has_pkt and not c.loops and t.holds(U32) and self.chance(35)
                and self.room(CHECKSUM_STACK))

    def _i_checksum(self, t: Int, depth: int, pure: bool) -> E:
        self.use("checksum")
        self.ctx.helpers = True
        self.ctx.stack += CHECKSUM_STACK
        args = [self.int_expr(U32, depth, U32).text for _ in range(2 if self.chance(50) else 3)]
        return E(f"pkt.checksum({', '.join(args)})", PREC["atom"], U32)

    # ---------------------------------------------------------------- atomics
    def atomic_places(self, t: Int | None) -> list[tuple[str, Any, Var]]:
        """32/64-bit integer fields of map values (or stack structs) for `atomic_add`."""
        return [p for p in self.places(lambda ft: isinstance(ft, Int) and ft.bits >= 32
                                       and (t is None or t.holds(ft)))
                if p[2].origin in ("map", "stack") or (p[2].origin == "param" and not p[2].view
                                                      and p[2].type.has_lock)]  # type: ignore[union-attr]

    def atomic_expr(self, place: tuple[str, Any, Var]) -> E:
        self.use("atomics")
        text, t, _ = self.element(place, runtime_pct=0)    # the element must provably exist
        return self.atomic_call(text, t, lambda: self.int_expr(t, 1, t))

    def atomic_call(self, text: str, t: Int, operand: Callable[[], E]) -> E:
        """`atomic_add`, `atomic_xchg` or `atomic_cas` of the field `text`. A swap's expected
        value is often the field itself (read first, so the swap takes place) or 0 (what
        an untouched field holds), else any value (it seldom takes place)."""
        op = self.choose([(2, "add"), (1, "xchg"), (1, "cas")])
        if op != "cas":
            return E(f"atomic_{op}({text}, {operand().text})", PREC["atom"], t)
        expected = self.pick([text, text, "0"]) if self.chance(70) else operand().text
        return E(f"atomic_cas({text}, {expected}, {operand().text})", PREC["atom"], t)

    # ---------------------------------------------------------------- calls
    def callable_funcs(self, want: Callable[[Any], bool], pure: bool) -> list[FuncDef]:
        """Functions a call here may name: nesting, lock, resize, stack and map-update rules."""
        c = self.ctx
        return [f for f in self.funcs if want(f.returns) and (f.depth < 4 or c.hook)
                and (c.has_pkt or "pkt" not in [t for _, t in f.params])
                and not ((pure or c.lock) and (f.helpers or f.locks or f.resizes))
                and (c.resize_ok or not f.resizes) and c.stack + f.stack <= STACK_LIMIT
                and not (c.loops and f.forks > 2) and c.forks + f.forks <= 12  # paths multiply
                and all(self._existing(t) for _, t in f.params if getattr(t, "has_lock", False))
                and all(c.can_update(m) for m in self.maps if m.name in f.updates)]

    def _existing(self, s: StructDef) -> list[E]:
        out = [E(v.name, PREC["atom"], s) for v in self.refs() if v.type is s]
        return out + [E(p[0], PREC["atom"], s) for p in self.places(lambda t: t is s, whole=True)]

    def call_expr(self, f: FuncDef, pure: bool) -> E:
        c = self.ctx
        c.stack += f.stack       # before the arguments, which may hold calls themselves
        # A struct holding a lock or timer is passed as an existing map entry: no argument
        # may update a map meanwhile (the entry's reference would be stale, and with no
        # other one left only a fresh `S()` could be passed, which the checker refuses)
        saved = c.update_ok
        c.update_ok = saved and not any(getattr(t, "has_lock", False) for _, t in f.params)
        try:
            args = ["pkt" if t == "pkt" else self.int_expr(t, 1, t, pure).text if isinstance(t, Int)
                    else self.bool_value(1, pure).text if t is BOOL
                    else (self.struct_value(t, 1, pure) or self.zeroed(t)).text for _, t in f.params]
        finally:
            c.update_ok = saved
        self.use("functions")
        self.called.add(f.name)
        c.depth = max(c.depth, f.depth + 1)
        c.forks += f.forks
        c.helpers |= f.helpers
        c.locks |= f.locks
        if f.resizes:
            c.resizes = True
            c.epoch += 1
        for m in self.maps:
            if m.name in f.updates:
                c.updated(m)
        return E(f"{f.name}({', '.join(args)})", PREC["atom"], f.returns)

    def method_calls(self, want: Callable[[Any], bool]) -> list[Callable[[], E]]:
        out: list[Callable[[], E]] = []
        for v in self.refs():
            for m in v.type.methods:  # type: ignore[union-attr]
                if want(m.returns):
                    out.append(functools.partial(self._method, v, m))
        return out

    def _method(self, v: Var, m: MethodDef) -> E:
        self.use("functions" if not v.type.builtin else "packets")  # type: ignore[union-attr]
        self.ctx.depth = max(self.ctx.depth, 2)
        arg = ""
        if m.arg is not None:
            flag = self.pick(["TCP_ACK", "TCP_SYN", "TCP_FIN", "TCP_RST", "TCP_ECE"])
            self.imports.add(flag)
            arg = flag
        return E(f"{v.name}.{m.name}({arg})", PREC["atom"], m.returns)

    # ---------------------------------------------------------------- bools
    def bool_value(self, depth: int, pure: bool = False) -> E:
        """A bool kept as a value (stored, passed, returned), not only branched on.

        BPF has no set-on-condition: a comparison kept as 0/1 is a branch whose two paths the
        verifier walks apart (in a loop, once per iteration). Past a few of them, and mostly
        inside loops, the value is a plain bool read or a literal instead, so the programs
        stay within the verifier's (and the checker's estimate's) budget.
        """
        c = self.ctx
        if c.forks >= 8 or (c.loops and not self.chance(10)):
            atoms = [v.name for v in self.scalar_vars(lambda t: t is BOOL)]
            return E(self.pick(atoms) if atoms and self.chance(60) else self.pick(["True", "False"]),
                     PREC["atom"], BOOL)
        c.forks += 1
        return self.bool_expr(depth, pure)

    def bool_expr(self, depth: int, pure: bool = False) -> E:
        """A condition: comparisons, None tests, `and`/`or`/`not`, sequence comparisons..."""
        pure = pure or self.ctx.no_helpers
        c = self.ctx
        atoms: list[Callable[[], E]] = [functools.partial(E, v.name, PREC["atom"], BOOL)
                                        for v in self.scalar_vars(lambda t: t is BOOL)]
        atoms += [functools.partial(self._place_atom, p) for p in self.places(lambda t: t is BOOL)]
        opt = [v for v in c.vars() if v.optional and c.alive(v)]
        unchecked = [v for v in opt if not c.narrowed(v)]
        d, few = depth > 0, c.forks < 10
        calls = self.callable_funcs(lambda r: r is BOOL, pure) if d else []
        methods = self.method_calls(lambda r: r is BOOL) if d else []
        effects = self.bool_effects() if d and not pure else []
        kind = self.choose([
            (5 if atoms else 0, "atom"), (8, "cmp"), (1, "lit"),
            (2 * d if self.on("branches") else 0, "not"), (3 * d if self.on("branches") else 0, "logic"),
            (1 * d if self.on("seq") else 0, "seq"), (2 if opt and few else 0, "none"),
            (2 if unchecked and d and self.on("none_checks") and few else 0, "guard"),
            (1 * d if self.on("casts") else 0, "bcast"), (2 if calls else 0, "call"),
            (2 if methods else 0, "method"), (1 if effects else 0, "effect")])
        if kind in ("atom", "method", "effect"):
            return self.pick({"atom": atoms, "method": methods, "effect": effects}[kind])()  # type: ignore[no-any-return]
        if kind == "lit":
            return E(self.pick(["True", "False"]), PREC["atom"], BOOL, True)
        if kind == "call":
            return self.call_expr(self.pick(calls), pure)
        if kind == "none":
            self.use("none_checks")
            c.forks += 1        # a None test of a live reference keeps two verifier states
            v = self.pick(opt)          # on a checked reference the test folds to a constant
            return E(f"{v.name} {self.pick(['is None', 'is not None'])}", PREC["cmp"], BOOL,
                     c.narrowed(v))
        if kind == "guard":
            c.forks += 1
            return self.guarded(self.pick(unchecked), depth - 1, pure)
        return getattr(self, "_b_" + kind)(max(depth - 1, 0), pure)  # type: ignore[no-any-return]

    def _b_cmp(self, depth: int, pure: bool) -> E:
        """Signed or unsigned, mixed widths, literals on either side."""
        self.use("compare")
        if depth and self.chance(8):
            a, b = self.bool_expr(depth, pure), self.bool_expr(depth, pure)
            op = self.pick(["==", "!="])
        else:
            s = self.some_type()
            a = self.typed(s, depth, pure)
            b = self.int_expr(self.pick([x for x in INTS if x.signed == s.signed]), depth,
                              a.type, pure)  # type: ignore[arg-type]
            if self.chance(25):
                a, b = b, a
            op = self.pick(["==", "!=", "<", "<=", ">", ">="])
        return E(f"{wrap(a, 5)} {op} {wrap(b, 5)}", PREC["cmp"], BOOL, a.const and b.const)

    def _b_not(self, depth: int, pure: bool) -> E:
        a = self.bool_expr(depth, pure)
        return E(f"not {wrap(a, PREC['not'])}", PREC["not"], BOOL, a.const)

    def _b_logic(self, depth: int, pure: bool) -> E:
        op = self.pick(["and", "or"])
        a, b = self.bool_expr(depth, pure), self.bool_expr(depth, pure)
        return E(f"{wrap(a, PREC[op])} {op} {wrap(b, PREC[op], True)}", PREC[op], BOOL, a.const)

    def _b_seq(self, depth: int, pure: bool) -> E:
        self.use("seq")
        a, b = self.typed(U32, depth, pure), self.int_expr(U32, depth, U32, pure)
        name = self.pick(["seq_after", "seq_before", "seq_after_eq", "seq_before_eq"])
        return E(f"{name}({a.text}, {b.text})", PREC["atom"], BOOL, a.const and b.const)

    def _b_bcast(self, depth: int, pure: bool) -> E:
        self.use("casts")
        a = self.typed(self.some_type(), depth, pure)
        return E(f"bool({a.text})", PREC["atom"], BOOL, a.const)

    def guarded(self, v: Var, depth: int, pure: bool) -> E:
        """`x is not None and <uses x>` / `x is None or <uses x>`: the right side sees `x` checked."""
        self.use("none_checks")
        self.ctx.frames.append(Frame(narrowed={id(v)}))
        try:
            inner = self.bool_expr(depth, pure)
        finally:
            self.ctx.frames.pop()
        test, op = self.pick([(f"{v.name} is not None", "and"), (f"{v.name} is None", "or"),
                              (v.name, "and"), (f"not {v.name}", "or")])
        return E(f"{test} {op} {wrap(inner, PREC[op], True)}", PREC[op], BOOL)

    def room(self, nbytes: int) -> bool:
        """Whether `nbytes` more of stack keep the hook within the generator's stack budget."""
        return self.ctx.stack + nbytes <= STACK_LIMIT

    @staticmethod
    def map_stack(m: MapDef) -> int:
        """Stack a map operation may take: a key and a fresh value."""
        key = m.key.size if isinstance(m.key, StructDef) else 8
        return (key + 7) // 8 * 8 + (m.value.size + 7) // 8 * 8

    def bool_effects(self) -> list[Callable[[], E]]:
        """Map and queue operations whose success is a bool (they change state)."""
        out: list[Callable[[], E]] = []
        for m in self.maps:
            if not self.room(self.map_stack(m)):
                continue
            if m.keyed and self.on("maps") and self.ctx.can_update(m):
                out.append(functools.partial(self.map_update_expr, m))
            elif m.kind == "Queue" and self.on("queue"):
                out.append(functools.partial(self._value_call, m, "push"))
            elif m.kind == "RingBuf" and self.on("ringbuf"):
                out.append(functools.partial(self._value_call, m, "output"))
        return out

    def _value_call(self, m: MapDef, method: str) -> E:
        v = self.struct_value(m.value, 1, map_value=True) or self.zeroed(m.value)
        self.use("queue" if m.kind == "Queue" else "ringbuf")
        self.ctx.helpers = True
        return E(f"{m.name}.{method}({v.text})", PREC["atom"], BOOL)

    def map_update_expr(self, m: MapDef, statement: bool = False) -> E:
        """`m.set(k, v)` and friends; as a statement, `set` may also be written `m[k] = v`."""
        op = self.pick(["set", "replace"] + ([] if m.is_array else ["insert", "delete"]))
        self.use("maps", *self.map_features(m))
        self.ctx.helpers = True
        k = self.key_expr(m)
        if op == "delete":
            self.ctx.updated(m)
            return E(f"{m.name}.delete({k.text})", PREC["atom"], BOOL)
        v = self.struct_value(m.value, 1, map_value=True) or self.zeroed(m.value)
        self.ctx.updated(m)
        if statement and op == "set" and self.chance(30):
            return E(f"{m.name}[{k.text}] = {v.text}", 0, None)
        return E(f"{m.name}.{op}({k.text}, {v.text})", PREC["atom"], BOOL)

    @staticmethod
    def map_features(m: MapDef) -> list[str]:
        return {"LruHashMap": ["lru"], "PerCpuArray": ["percpu"], "PerCpuHashMap": ["percpu"]}.get(m.kind, [])

    # ---------------------------------------------------------------- structs and keys
    def struct_value(self, s: StructDef, depth: int, pure: bool = False,
                     small: bool = False, map_value: bool = False) -> E | None:
        """A reference to a value of struct `s`: an existing one, or `S(field=...)` on the stack.

        A struct holding a SpinLock only exists in a map: it is passed by reference, and a map
        update takes a fresh `S(...)` (written straight into the map), never an existing value.
        """
        existing = [] if s.has_lock and map_value else self._existing(s)
        can_build = (not s.has_lock or map_value) and self.ctx.stack + s.size <= STACK_LIMIT
        kind = self.choose([(3 if can_build else 0, "build"), (3 if existing else 0, "existing")]) \
            if (can_build or existing) else None
        if kind is None:
            return None
        if kind == "existing":
            chosen: E = self.pick(existing)
            return chosen
        self.ctx.stack += (s.size + 7) // 8 * 8
        self.use("structs")
        inits = []
        for name, t in s.fields:
            if t is LOCK or not self.chance(75 if small else 55):
                continue
            vt = self.value_type(t)
            if isinstance(vt, Int):
                e = self.int_expr(vt, depth, vt, pure)
                e = self.small(e) if small else e
            elif vt is BOOL:
                e = self.bool_value(depth, pure)
            elif isinstance(vt, StructDef):
                sub = self.struct_value(vt, depth - 1, pure) if depth > 0 else None
                if sub is None:
                    continue
                e = sub
            elif isinstance(vt, Arr):
                same = self.places(lambda t: t == vt, whole=True)  # noqa: B023 (used at once)
                if not same:
                    continue
                e = E(self.pick(same)[0], PREC["atom"], None)
            else:
                continue
            inits.append(f"{name}={e.text}")
        return E(f"{s.name}({', '.join(inits)})", PREC["atom"], s)

    def zeroed(self, s: StructDef) -> E:
        """`S()`: a zeroed value when nothing better fits in the stack budget."""
        self.ctx.stack += (s.size + 7) // 8 * 8
        return E(f"{s.name}()", PREC["atom"], s)

    def small(self, e: E) -> E:
        """Keep a key component in a small range so map contents a test sets up get hit."""
        return lit_text(self.num(0, 1)) if e.type is None else binop("&", e, lit_text(1), e.type)

    def key_expr(self, m: MapDef) -> E:
        """A key in the range a test fills: `S(f=x & 1)`, `x & 3`, an index below the size."""
        if isinstance(m.key, StructDef):
            return self.struct_value(m.key, 1, small=True) or self.zeroed(m.key)
        span = m.max_entries if m.is_array else 4
        self.ctx.stack += 8
        kind = self.choose([(3, "lit"), (4, "mask"), (1, "raw")])
        if kind == "lit":
            return lit_text(self.num(0, span - 1))
        e = self.typed(U32 if m.is_array else m.key, 1)  # type: ignore[arg-type]
        if kind == "raw":
            return e
        pow2 = span & (span - 1) == 0
        return binop("&" if pow2 else "%", e, lit_text(span - 1 if pow2 else span), e.type)

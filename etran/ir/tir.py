"""The typed program: what the checker produces and both back ends consume.

Every name is resolved, every expression has a type, every implicit
conversion is an explicit `Convert`, every call is resolved to what it does
(`MapGet`, `PacketHeader`, `Call` of a user function...). The reference
interpreter (`etran.interp`) and the LLVM lowering (`etran.lower.module`)
both walk this tree, so the two cannot disagree about what a name or an
operator means; they can only disagree about how they compute it, which is
what the differential tests look for.

Struct values are references to memory (map values, packet views, stack
storage); scalars are values. A *place* (`FieldPlace`, `IndexPlace`) names
memory to read (`Load`), write (`Store`) or take a reference to (`AddrOf`).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from etran.dsl.diagnostics import Diagnostic, Span
from etran.ir.types import BOOL, U32, Field, IntType, MapType, OptionalType, StructType, Type


@dataclass(eq=False, slots=True)
class Var:
    """A local variable or parameter; identity semantics (two `x`s in two functions differ)."""

    name: str
    type: Type
    span: Span | None = None

    def __repr__(self) -> str:
        return f"Var({self.name}: {self.type})"


# ---------------------------------------------------------------- places
@dataclass(frozen=True, slots=True)
class FieldPlace:
    base: Expr          # a reference to a struct
    field: Field
    span: Span

    @property
    def type(self) -> Type:
        return self.field.type


@dataclass(frozen=True, slots=True)
class IndexPlace:
    """`base[index]`; an index outside the array reads 0 and ignores writes."""

    base: Expr          # a reference to array storage (AddrOf of an array-typed place)
    index: Expr         # an integer expression
    elem: Type
    length: int
    span: Span
    in_packet: bool = False   # inside a packet view: the lowering re-checks against data_end

    @property
    def type(self) -> Type:
        return self.elem


Place = FieldPlace | IndexPlace


# ---------------------------------------------------------------- expressions
@dataclass(frozen=True, slots=True)
class Const:
    value: int
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class VarRef:
    var: Var
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class Unary:
    op: str             # "-" or "~"
    operand: Expr
    type: IntType
    span: Span


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class Binary:
    """Arithmetic; both operands already have `type`, except a shift's count (any integer)."""

    op: str             # + - * // % & | ^ << >>
    left: Expr
    right: Expr
    type: IntType
    span: Span


@dataclass(frozen=True, slots=True)
class Compare:
    """A comparison of two operands of the same type (integers or bools)."""

    op: str             # == != < <= > >=
    left: Expr
    right: Expr
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class Logic:
    op: str             # "and" | "or", short-circuit
    left: Expr
    right: Expr
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class Cond:
    test: Expr
    body: Expr
    orelse: Expr
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class Convert:
    """Integer/bool conversion: truncate, zero- or sign-extend, or test against zero."""

    operand: Expr
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class Load:
    """Read a scalar from memory (big-endian fields are converted to host order)."""

    place: Place
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class AddrOf:
    """A reference to a struct or array stored at `place`."""

    place: Place
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class IsNone:
    operand: Expr
    negate: bool
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class NewStruct:
    """Fresh zeroed stack storage for `struct`, with the given fields set in order."""

    struct: StructType
    inits: tuple[tuple[Field, Expr], ...]
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class Call:
    func: Function
    args: tuple[Expr, ...]
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class Builtin:
    """A helper with no memory operands: now_ns, cpu_id, random_u32, pkt_len, rx_queue, ifindex."""

    name: str
    args: tuple[Expr, ...]
    type: Type
    span: Span


@dataclass(frozen=True, slots=True)
class MinMax:
    op: str             # "min" | "max"
    args: tuple[Expr, ...]
    type: IntType
    span: Span


@dataclass(frozen=True, slots=True)
class MapGet:
    """`m.get(key)`: a reference to the value, or None. Per-CPU maps give this CPU's copy."""

    map: MapType
    key: Expr           # scalar value or struct reference
    type: OptionalType
    span: Span


@dataclass(frozen=True, slots=True)
class MapSet:
    """`m.set(key, value)` / `m[key] = value`: insert or replace; False when the map is full."""

    map: MapType
    key: Expr
    value: Expr         # struct reference
    flags: int          # 0 any, 1 only if absent, 2 only if present
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class MapDelete:
    map: MapType
    key: Expr
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class QueuePush:
    map: MapType
    value: Expr
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class QueuePop:
    map: MapType
    type: OptionalType
    span: Span


@dataclass(frozen=True, slots=True)
class RingOutput:
    map: MapType
    value: Expr
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class Redirect:
    """`xsks.redirect(key, fallback)`: XDP_REDIRECT when the slot is set, else `fallback`."""

    map: MapType
    key: Expr
    fallback: Expr
    type: IntType
    span: Span


@dataclass(frozen=True, slots=True)
class Atomic:
    """An atomic update of a map value's (or the stack's) field, giving its old value:
    `atomic_add(place, value)` (op "add"), `atomic_xchg(place, value)` ("xchg": store
    value) and `atomic_cas(place, expected, value)` ("cas": store value if the field holds
    expected)."""

    place: Place
    value: Expr
    type: IntType
    span: Span
    op: str = "add"
    expected: Expr | None = None


@dataclass(frozen=True, slots=True)
class TimerStart:
    """`v.timer.start(delay_ns)`: arm the timer of a map value; its handler runs after delay."""

    timer: Place        # the Timer field of a map value
    map: MapType        # the only map whose values have this struct type
    handler: Function | None
    delay: Expr
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class TimerCancel:
    timer: Place
    map: MapType
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class PacketHeader:
    """`pkt.header(H, offset)`: a view of H at offset, or None when the packet is too short."""

    header: StructType
    offset: Expr
    type: OptionalType
    span: Span


@dataclass(frozen=True, slots=True)
class PacketResize:
    """`pkt.resize_head(delta)` / `pkt.resize_tail(delta)`: grow (+) or shrink (-) the packet."""

    where: str          # "head" | "tail"
    delta: Expr
    span: Span
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class PacketChecksum:
    """`pkt.checksum(offset, length[, seed])`: the Internet checksum sum (RFC 1071) of the
    packet's bytes [offset, offset + length) as big-endian 16-bit words (an odd last byte
    padded with zero), plus `seed`, folded to 16 bits and not complemented. Bytes past the
    packet's end, and past CHECKSUM_MAX_BYTES, are not summed."""

    offset: Expr
    length: Expr
    seed: Expr
    span: Span
    type: Type = U32


Expr = (Const | VarRef | Unary | Not | Binary | Compare | Logic | Cond | Convert | Load | AddrOf |
        IsNone | NewStruct | Call | Builtin | MinMax | MapGet | MapSet | MapDelete | QueuePush |
        QueuePop | RingOutput | Redirect | Atomic | TimerStart | TimerCancel | PacketHeader |
        PacketResize | PacketChecksum)


# ---------------------------------------------------------------- statements
@dataclass(frozen=True, slots=True)
class Assign:
    var: Var
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Store:
    """`place = value` or, with `op`, `place op= value` (the place is evaluated once)."""

    place: Place
    value: Expr
    op: str | None
    span: Span


@dataclass(frozen=True, slots=True)
class CopyStruct:
    """Copy a whole struct (or array) into `place` from the reference `value`."""

    place: Place
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class ExprStmt:
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class If:
    test: Expr
    body: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Loop:
    """`for var in range(start, stop, step)`; `bound` is the compile-time maximum trip count."""

    var: Var
    start: Const        # the verifier must see where the count starts
    stop: Expr
    step: int
    bound: int
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Break:
    span: Span


@dataclass(frozen=True, slots=True)
class Continue:
    span: Span


@dataclass(frozen=True, slots=True)
class Return:
    value: Expr | None
    span: Span


@dataclass(frozen=True, slots=True)
class Locked:
    """`with v.lock:` — holds the map value's spin lock for the body."""

    lock: Place
    body: tuple[Stmt, ...]
    span: Span


Stmt = Assign | Store | CopyStruct | ExprStmt | If | Loop | Break | Continue | Return | Locked


# ---------------------------------------------------------------- program
@dataclass(eq=False, slots=True)
class Function:
    """A user function, method, or hook. Bodies are filled in by the checker."""

    name: str
    params: list[Var]
    returns: Type
    span: Span
    module: str
    hook: str | None = None          # "xdp" | "egress" | "gen" | "timer" | None
    name_span: Span | None = None    # where the name is written in `def name(...)`
    timer_field: tuple[StructType, Field] | None = None
    body: tuple[Stmt, ...] = ()
    # Filled by the checker: whether it may resize the packet.
    may_resize: bool = False
    locals: list[Var] = field(default_factory=list)
    docstring: str | None = None
    # What the body does that hooks and locks restrict: (kind, name, span), e.g.
    # ("helper", "now_ns", span), ("redirect", "xsks", span), ("resize", "head", span).
    effects: list[tuple[str, str, Span]] = field(default_factory=list)
    # Bytes of stack the body's own struct temporaries need (callees not included).
    stack_bytes: int = 0
    # Call sites, in order, for the call-depth and stack rules: (callee, span).
    call_sites: list[tuple[Function, Span]] = field(default_factory=list)

    @property
    def qualname(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Function({self.name})"


@dataclass(frozen=True, slots=True)
class Estimate:
    """A hook's estimated size and verifier work (`etran.analysis.budget`)."""

    insns: int
    processed: int
    stack: int
    hottest: str   # the statement contributing most to `processed`, for messages
    # `processed` is the instruction-level replay's (etran.analysis.replay): at the check,
    # the source model's estimate was over the kernel's limit and the replay's within it;
    # once compiled, the replay's was lower (etran.analysis.budget.refine_estimates)
    replayed: bool = False
    source: int = 0     # the source model's `processed`, when the replay's replaced it
    # the most branches the replay saw waiting at once, once compiled, when that is too many
    # (the kernel refuses a program that leaves more than 8,192:
    # etran.analysis.replay.JMP_SEQ_LIMIT); 0 otherwise
    waiting: int = 0


@dataclass(eq=False, slots=True)
class Program:
    """A checked program: everything the back ends need, and nothing that owns a resource."""

    name: str                         # the main module's name (file stem)
    filename: str
    source: str                        # the main file's text (for debug info and reports)
    sources: dict[str, str]            # every file compiled, by name
    structs: list[StructType]
    maps: list[MapType]
    functions: list[Function]          # every checked function, callees before callers
    hooks: list[Function]              # the programs to emit, in source order
    constants: dict[str, int]
    # Per hook: the estimate of instructions and verifier work (etran.analysis.budget).
    budgets: dict[str, Estimate] = field(default_factory=dict)
    # With check_source(enforce_rules=False): the whole-program rules it breaks.
    rule_violations: list[Diagnostic] = field(default_factory=list)

    def hook(self, name: str) -> Function:
        for h in self.hooks:
            if h.name == name:
                return h
        raise KeyError(name)

    def map(self, name: str) -> MapType:
        for m in self.maps:
            if m.name == name:
                return m
        raise KeyError(name)


# A field holds typed-program nodes when its annotation names one of these (`Expr | None`,
# `tuple[Stmt, ...]`, `tuple[tuple[Field, Expr], ...]`...); the others hold types, spans,
# maps, variables, functions, names and numbers.
_NODE_ANNOTATION = re.compile(r"\b(Expr|Place|Stmt|Const)\b")
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(cls: type) -> tuple[str, ...]:
    """The fields of `cls` that hold typed-program nodes, found once per class."""
    names = _CHILD_FIELDS.get(cls)
    if names is None:
        names = _CHILD_FIELDS[cls] = tuple(
            f.name for f in dataclasses.fields(cls) if _NODE_ANNOTATION.search(str(f.type))
        ) if dataclasses.is_dataclass(cls) else ()
    return names


def children(n: object) -> list[object]:
    """The typed-program nodes directly inside `n`: expressions, places and statements (the
    values of `(field, value)` pairs too), not variables, functions, types or spans.

    Only the fields that can hold nodes are read (`_child_fields`, by class): the analyses
    (etran.analysis.budget) walk every node of every hook several times, and a walk that
    also went through each node's type and span took most of their time."""
    out: list[object] = []
    names = _CHILD_FIELDS.get(type(n))
    for name in _child_fields(type(n)) if names is None else names:
        v = getattr(n, name)
        if type(v) is tuple:
            out.extend(x[1] if type(x) is tuple else x for x in v)
        elif v is not None:
            out.append(v)
    return out


def root_var(e: Expr) -> Var | None:
    """The variable a reference is reached from, if any (`v` in `v.a.b[i]`)."""
    while isinstance(e, AddrOf):
        e = e.place.base
    return e.var if isinstance(e, VarRef) else None

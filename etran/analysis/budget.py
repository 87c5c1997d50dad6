"""Estimate a hook's size and how much work the kernel verifier will do on it.

Two numbers per hook, both before LLVM runs:

* `insns`: BPF instructions with every loop unrolled and every call inlined
  (an upper bound on the program LLVM emits; the kernel's limit is 1,000,000);
* `processed`: instructions the verifier will walk. The verifier explores
  every path, so each instruction counts once per distinct verifier state
  that reaches it. Paths multiply at branches; at a join the verifier prunes
  a path whose state equals one already explored, which it can when the two
  paths differ only in values it does not track precisely. The estimate
  assumes paths stay apart when a branch assigns a variable that later
  decides a branch, a loop bound, a packet offset or an index (the verifier
  tracks those precisely), or assigns a reference (pointer states differ),
  and that they merge otherwise; only variables read later count, since the
  verifier's liveness ignores dead registers and slots when it prunes. Loops
  are walked iteration by iteration, like the verifier does.

`tests/` and the property tests compare both numbers with what the kernel
reports; the estimate must never be below the kernel's count for a program
the checker accepts.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from etran.analysis.stack import stack_bytes
from etran.dsl.diagnostics import DiagnosticSink
from etran.ir import tir
from etran.ir.semantics import CHECKSUM_CHUNK, CHECKSUM_MAX_BYTES
from etran.ir.tir import Estimate
from etran.ir.types import OptionalType, StructType

if TYPE_CHECKING:
    from etran.analysis.replay import Opinion

MAX_PROCESSED = 1_000_000
MAX_INSNS = 1_000_000
_CAP = 1e15
# The cost table is an average over LLVM's output and the path model a heuristic; the
# margin keeps the estimate above the kernel's count on every program measured: the
# examples and the generated-program campaigns (docs/verification.md).
MARGIN = 2.25
SLACK = 64

# Instructions per operation (LLVM -O2 output for cpu v3, measured on the examples).
_HELPER = {"MapGet": 6, "MapSet": 8, "MapDelete": 6, "QueuePush": 6, "QueuePop": 8,
           "RingOutput": 7, "Redirect": 5, "Atomic": 3, "TimerStart": 16, "TimerCancel": 4,
           "PacketHeader": 10, "PacketResize": 8}
# `pkt.checksum`: the loop's code, and what the verifier processes walking it once: the
# loop has 64 pieces, and each is walked 2 to 4 times (the last piece or not, the exit),
# 130 to 140 instructions per piece on the measured shapes; 200 leaves room. Walks entering
# with different states do not merge, so the charge is per path like everything else.
_CHECKSUM_INSNS = 80
_CHECKSUM_WALK = 200 * (CHECKSUM_MAX_BYTES // CHECKSUM_CHUNK)
_BUILTIN = {"now_ns": 2, "cpu_id": 2, "random_u32": 2, "pkt_len": 3, "rx_queue": 1, "ifindex": 1}


@dataclass
class _Paths:
    """Multiplicities where control leaves a block other than by falling through."""

    returns: list[float] = field(default_factory=list)
    # What each return gives back: the constant, or a key of its own (any other value).
    return_values: list[object] = field(default_factory=list)
    breaks: list[float] = field(default_factory=list)
    continues: list[float] = field(default_factory=list)


# Facts about a node (the variables it reads, the calls inside it...) are found once per
# check: a hook's walk asks for them at every statement, every loop is walked several
# times (twice to learn its growth, and again inside each enclosing loop and at each call
# of its function), and hooks share their callees. Each memo is keyed by the node's id and
# keeps the node, so that the id stays its own while the entry lives; `_remembering`
# forgets them all when the check's estimates are done.
_READ_VARS: dict[int, tuple[object, frozenset[tir.Var]]] = {}
_CALLS_IN: dict[int, tuple[object, tuple[tir.Call, ...]]] = {}
_EXPOSED: dict[int, tuple[object, tuple[frozenset[tir.Var], frozenset[tir.Var]]]] = {}
_TAILS: dict[int, tuple[object, list[frozenset[tir.Var]]]] = {}
_LOOP_FACTS: dict[int, tuple[object, _LoopFacts]] = {}
_RETURNED: dict[int, tuple[tir.Function, list[tir.Expr]]] = {}
_OWN_FACTS: dict[int, tuple[tir.Function, _OwnFacts]] = {}
_MEMOS: tuple[dict[int, Any], ...] = (_READ_VARS, _CALLS_IN, _EXPOSED, _TAILS, _LOOP_FACTS,
                                      _RETURNED, _OWN_FACTS)
_remembering_depth = 0


@contextmanager
def _remembering() -> Iterator[None]:
    """Keep the memoised facts while the block runs (nested blocks share them), and forget
    them when the outermost one ends: the memos hold the nodes, which must not outlive the
    check (a fuzzing run checks thousands of programs in one process)."""
    global _remembering_depth
    _remembering_depth += 1
    try:
        yield
    finally:
        _remembering_depth -= 1
        if not _remembering_depth:
            for memo in _MEMOS:
                memo.clear()


# The statements holding blocks: their facts are memoised on their own, so that a question
# about an enclosing block reuses what was found for the nested ones.
_COMPOUND = (tir.If, tir.Loop, tir.Locked)


def _read_vars(n: object) -> frozenset[tir.Var]:
    """Every variable read by `n`, an expression, place or statement (through places, call
    arguments and nested blocks too; not inside called functions). Memoised for `n` and
    for the compound statements inside it."""
    hit = _READ_VARS.get(id(n))
    if hit is not None:
        return hit[1]
    out: set[tir.Var] = set()
    stack: list[object] = tir.children(n)
    while stack:
        x = stack.pop()
        if type(x) is tir.VarRef:
            out.add(x.var)
        elif isinstance(x, _COMPOUND):
            out |= _read_vars(x)
        else:
            stack.extend(tir.children(x))
    if type(n) is tir.VarRef:
        out.add(n.var)
    found = frozenset(out)
    _READ_VARS[id(n)] = (n, found)
    return found


def _refs(e: object, out: set[tir.Var]) -> None:
    """Add to `out` every variable read by an expression or statement (`_read_vars`)."""
    out |= _read_vars(e)


def _reads(e: object, var: tir.Var) -> int:
    """How many times `e` (an expression, statement or block) reads `var`."""
    n = 0
    stack: list[object] = list(e) if isinstance(e, tuple) else [e]
    while stack:
        x = stack.pop()
        if type(x) is tir.VarRef:
            n += x.var is var
        else:
            stack.extend(tir.children(x))
    return n


def _counter_copies(body: tuple[tir.Stmt, ...], counter: tir.Var) -> set[tir.Var]:
    """Variables assigned in `body` a value computed from the loop counter alone."""
    out: set[tir.Var] = set()
    for s in body:
        if isinstance(s, tir.Assign):
            if _read_vars(s.value) == {counter} and not _calls_in(s.value):
                out.add(s.var)
        elif isinstance(s, tir.If):
            out |= _counter_copies(s.body, counter) | _counter_copies(s.orelse, counter)
        elif isinstance(s, tir.Locked):
            out |= _counter_copies(s.body, counter)
    return out


def _checksums_in(e: object) -> list[tir.PacketChecksum]:
    """The `pkt.checksum`s an expression computes (not those inside their operands)."""
    if isinstance(e, tir.PacketChecksum):
        return [e]
    out: list[tir.PacketChecksum] = []
    for c in tir.children(e):
        out += _checksums_in(c)
    return out


def _calls_in(e: object) -> tuple[tir.Call, ...]:
    """The calls inside an expression (memoised)."""
    hit = _CALLS_IN.get(id(e))
    if hit is not None:
        return hit[1]
    out: list[tir.Call] = []
    stack: list[object] = [e]
    while stack:
        n = stack.pop()
        if isinstance(n, tir.Call):
            out.append(n)
        stack.extend(tir.children(n))
    found = tuple(out)
    _CALLS_IN[id(e)] = (e, found)
    return found


def _returned(f: tir.Function) -> list[tir.Expr]:
    """The expressions `f` returns (memoised per function)."""
    if id(f) not in _RETURNED:
        found: list[tir.Expr] = []

        def walk(body: tuple[tir.Stmt, ...]) -> None:
            for st in body:
                if isinstance(st, tir.Return) and st.value is not None:
                    found.append(st.value)
                elif isinstance(st, tir.If):
                    walk(st.body)
                    walk(st.orelse)
                elif isinstance(st, (tir.Loop, tir.Locked)):
                    walk(st.body)
        walk(f.body)
        _RETURNED[id(f)] = (f, found)
    return _RETURNED[id(f)][1]


def _mark(e: object, target: set[tir.Var], feeds: list[tuple[tir.Call, set[tir.Var]]]) -> None:
    """`e` decides something the verifier must know precisely: the variables it reads go
    into `target`, and the calls in it into `feeds` (their returns are followed later)."""
    _refs(e, target)
    feeds += [(c, target) for c in _calls_in(e)]


class _Precise:
    """Which variables the verifier tracks precisely, and how.

    `branching`: variables that decide a branch, a loop bound, an offset or an
    index. Two paths that gave one of them *different constants* stay apart
    (each state decides a later branch its own way).
    `bounding`: variables the verifier must bound because they move a pointer
    (packet offsets, array indexes, resize amounts, loop bounds) and every
    reference. Two paths that gave one of them different *ranges* add a state:
    the verifier compares ranges and soon covers the others with the widest.
    A variable that only meets plain comparisons with unknown values is not
    tracked at all (the verifier marks precision only when it needs to).
    Both sets grow backwards through assignments, as the verifier's precision
    tracking does.
    """

    def __init__(self, hook: tir.Function) -> None:
        self.branching: set[tir.Var] = set()
        self.bounding: set[tir.Var] = set()
        self.assigns: list[tuple[tir.Var, tir.Expr]] = []
        self.feeds: list[tuple[tir.Call, set[tir.Var]]] = []   # calls in precise places
        self._followed: dict[int, set[int]] = {}
        self._seen: set[int] = set()
        # Checksum seeds in a divisor, by the assignment computing the quotient.
        self.dividing: list[tuple[tir.Stmt, tir.Var, list[tir.Expr]]] = []
        self._fn(hook)
        for stmt, var, seeds in self.dividing:
            if _reads(hook.body, var) > _reads(stmt, var):   # the quotient is read
                for seed in seeds:
                    _mark(seed, self.branching, self.feeds)
        # What each assignment's value reads and calls, found once: the fixpoint below
        # visits every assignment on each round.
        facts = [(var, _read_vars(value), _calls_in(value)) for var, value in self.assigns]
        for target in (self.branching, self.bounding):
            self._through_calls(target)
            changed = True
            while changed:
                changed = False
                for var, reads, calls in facts:
                    if var in target:
                        before = len(target)
                        target |= reads
                        self._through_calls(target, calls=calls)
                        changed |= len(target) != before
        self.branching |= self.bounding

    def _through_calls(self, target: set[tir.Var], e: object = None,
                       calls: Sequence[tir.Call] | None = None) -> None:
        """A call's value is what its function returns: when the call feeds a precise
        value, so do the variables its `return`s read (the kernel's precision tracking
        follows the value into the callee). The calls in `e`, or `calls`; with neither:
        every call recorded as feeding `target` (`self.feeds`)."""
        if calls is None:
            calls = [c for c, t in self.feeds if t is target] if e is None else _calls_in(e)
        followed = self._followed.setdefault(id(target), set())
        for call in calls:
            if id(call) in followed:
                continue
            followed.add(id(call))
            for value in _returned(call.func):
                target |= _read_vars(value)
                self._through_calls(target, value)

    def _fn(self, f: tir.Function) -> None:
        """What `f` and the functions it calls tell (each function's own part found once
        per check, `_own_facts`: hooks share their callees)."""
        if id(f) in self._seen:
            return
        self._seen.add(id(f))
        own = _own_facts(f)
        self.bounding |= own.bounding
        self.branching |= own.branching
        self.assigns += own.assigns
        self.feeds += [(c, self.branching if t is own.branching else self.bounding)
                       for c, t in own.feeds]
        self.dividing += own.dividing
        for callee, _ in f.call_sites:
            self._fn(callee)


class _OwnFacts:
    """What one function's own body tells `_Precise` (not its callees'): the variables its
    branches, loop bounds, offsets, indexes and divisors read (`branching`, `bounding`,
    with its references), the calls there (`feeds`), its assignments (arguments to
    parameters included) and its quotients of checksums (`dividing`). The same for every
    hook calling the function: found once per check (`_own_facts`)."""

    def __init__(self, f: tir.Function) -> None:
        self.branching: set[tir.Var] = set()
        self.bounding: set[tir.Var] = {
            v for v in f.locals + f.params if isinstance(v.type, (StructType, OptionalType))}
        self.assigns: list[tuple[tir.Var, tir.Expr]] = []
        self.feeds: list[tuple[tir.Call, set[tir.Var]]] = []   # calls in precise places
        self.divided: list[tir.Expr] = []
        self.dividing: list[tuple[tir.Stmt, tir.Var, list[tir.Expr]]] = []
        # Fields: what is stored into each (`out.word += f(...)`), and the fields read
        # where a value must be precise (`x // out.word`), with the set it must be in
        self.stored: list[tuple[object, tir.Expr]] = []
        self.tested: list[tuple[object, set[tir.Var]]] = []
        self._block(f.body)
        self._through_fields()

    def _mark(self, e: object, target: set[tir.Var]) -> None:
        _mark(e, target, self.feeds)
        self.tested += [(k, target) for k in _fields_read(e)]

    def _through_fields(self) -> None:
        """A field read where a value must be precise was stored by this function: LLVM
        keeps the stored value in a register, and the verifier's precision follows it back
        into what computed it (`out.word += ipv4_checksum(pkt, 14)`, then `x // out.word`:
        the checksum's sum kept apart per iteration, 2,214 processed; the model, missing
        the field, estimated 1,551). Each stored value is marked like the test's own."""
        done: set[tuple[object, int]] = set()
        work = list(self.tested)
        while work:
            key, target = work.pop()
            if (key, id(target)) in done:
                continue
            done.add((key, id(target)))
            for skey, value in self.stored:
                if skey == key:
                    _mark(value, target, self.feeds)
                    work += [(k, target) for k in _fields_read(value)]

    def _block(self, body: tuple[tir.Stmt, ...]) -> None:
        for s in body:
            self.divided = []
            if isinstance(s, tir.Assign):
                self.assigns.append((s.var, s.value))
                self._expr(s.value)
                if self.divided:
                    self.dividing.append((s, s.var, self.divided))
                    self.divided = []
            elif isinstance(s, tir.If):
                self._mark(s.test, self.branching)
                self._expr(s.test)
                self._block(s.body)
                self._block(s.orelse)
            elif isinstance(s, tir.Loop):
                self._mark(s.stop, self.bounding)
                self._block(s.body)
            elif isinstance(s, tir.Locked):
                self._block(s.body)
            elif isinstance(s, (tir.Store, tir.CopyStruct)):
                self._place(s.place)
                self._expr(s.value)
                key = _field_key(s.place)
                if key is not None and isinstance(s, tir.Store):
                    self.stored.append((key, s.value))
            elif isinstance(s, tir.ExprStmt) or (isinstance(s, tir.Return) and s.value is not None):
                self._expr(s.value)

    def _place(self, p: tir.Place) -> None:
        if isinstance(p, tir.IndexPlace):
            self._mark(p.index, self.bounding)

    def _expr(self, e: object) -> None:
        if isinstance(e, tir.Call):
            # A parameter is its argument under another name: precision flows back through it.
            for param, arg in zip(e.func.params, e.args):
                self.assigns.append((param, arg))
        if isinstance(e, (tir.Cond, tir.Logic)):
            self._mark(e.test if isinstance(e, tir.Cond) else e, self.branching)
        if isinstance(e, tir.Binary) and e.op in ("//", "%") \
                and not isinstance(e.right, tir.Const):
            # A checksum's value divides: its zero test makes the sum precise, and the
            # kernel follows the precision back through the folding into the seed.
            self.divided += [c.seed for c in _checksums_in(e.right)]
            # Any divisor is tested against zero, a branch like an `if`'s: where a path
            # knows its value, the verifier decides the test and makes the value precise,
            # back into a called function's loop (`x % ipv4_checksum(pkt, 14)`: the sum
            # of the header's words kept apart per iteration, 2,006 processed, 423
            # without the division).
            self._mark(e.right, self.branching)
        if isinstance(e, tir.PacketHeader):
            self._mark(e.offset, self.bounding)
        if isinstance(e, tir.PacketResize):
            self._mark(e.delta, self.bounding)
        if isinstance(e, (tir.Load, tir.AddrOf)):
            self._place(e.place)
        for c in tir.children(e):
            self._expr(c)


def _field_key(p: object) -> object:
    """A field place as a key: its variable and the field names down to it (None for a
    place through anything else)."""
    names: list[str] = []
    while isinstance(p, tir.FieldPlace):
        names.append(p.field.name)
        p = p.base.place if isinstance(p.base, tir.Load) else p.base
    if isinstance(p, tir.VarRef):
        return (p.var, tuple(names))
    return None


def _fields_read(e: object) -> list[object]:
    """The keys of the field places `e` loads from (`_field_key`)."""
    out: list[object] = []
    stack: list[object] = [e]
    while stack:
        x = stack.pop()
        if isinstance(x, tir.Load):
            key = _field_key(x.place)
            if key is not None:
                out.append(key)
        stack.extend(tir.children(x))
    return out


def _own_facts(f: tir.Function) -> _OwnFacts:
    hit = _OWN_FACTS.get(id(f))
    if hit is None:
        hit = _OWN_FACTS[id(f)] = (f, _OwnFacts(f))
    return hit[1]


def _exposed(body: tuple[tir.Stmt, ...]) -> tuple[frozenset[tir.Var], frozenset[tir.Var]]:
    """(variables read before being written on some path through `body`, variables written
    on every path): a small liveness analysis for what a loop carries between iterations.
    Memoised per block."""
    hit = _EXPOSED.get(id(body))
    if hit is not None:
        return hit[1]
    exposed: set[tir.Var] = set()
    killed: set[tir.Var] = set()
    for s in body:
        reads: set[tir.Var] = set()
        kills: frozenset[tir.Var] = frozenset()
        if isinstance(s, tir.Assign):
            _refs(s.value, reads)
            kills = frozenset({s.var})
        elif isinstance(s, tir.If):
            _refs(s.test, reads)
            e1, k1 = _exposed(s.body)
            e2, k2 = _exposed(s.orelse)
            reads |= e1 | e2
            kills = k1 & k2
        elif isinstance(s, (tir.Loop, tir.Locked)):
            if isinstance(s, tir.Loop):
                _refs(s.stop, reads)
            reads |= _exposed(s.body)[0]
        else:
            _refs(s, reads)
        exposed |= reads - killed
        killed |= kills
    found = frozenset(exposed), frozenset(killed)
    _EXPOSED[id(body)] = (body, found)
    return found


def _assigned(body: tuple[tir.Stmt, ...], out: dict[tir.Var, bool]) -> None:
    """Variables assigned in `body`: var -> True when every assignment is a constant."""
    for s in body:
        if isinstance(s, tir.Assign):
            out[s.var] = out.get(s.var, True) and isinstance(s.value, tir.Const)
        elif isinstance(s, tir.If):
            _assigned(s.body, out)
            _assigned(s.orelse, out)
        elif isinstance(s, tir.Loop):
            out[s.var] = False
            _assigned(s.body, out)
        elif isinstance(s, tir.Locked):
            _assigned(s.body, out)


def _tails(body: tuple[tir.Stmt, ...]) -> list[frozenset[tir.Var]]:
    """For each statement of `body`, the variables the statements after it read
    (memoised per block)."""
    hit = _TAILS.get(id(body))
    if hit is None:
        acc: frozenset[tir.Var] = frozenset()
        out: list[frozenset[tir.Var]] = []
        for s in reversed(body):
            out.append(acc)
            acc = acc | _read_vars(s)
        hit = _TAILS[id(body)] = (body, out[::-1])
    return hit[1]


@dataclass(frozen=True)
class _LoopFacts:
    """What `_Walker.loop` needs of a loop's body that depends on the body alone (found
    once per loop: a loop is walked again at every walk of the code around it)."""

    exposed: frozenset[tir.Var]          # `_exposed`: live across the back edge
    staying: list[int]                   # `_staying_paths`
    select_accumulators: set[tir.Var]    # `_select_accumulators`
    element_accumulators: set[tir.Var]   # `_packet_element_accumulators`
    counter_copies: set[tir.Var]         # `_counter_copies`


def _loop_facts(s: tir.Loop) -> _LoopFacts:
    hit = _LOOP_FACTS.get(id(s))
    if hit is None:
        varying: dict[tir.Var, bool] = {s.var: False}
        _assigned(s.body, varying)
        hit = _LOOP_FACTS[id(s)] = (s, _LoopFacts(
            _exposed(s.body)[0], _staying_paths(s.body, set(varying)),
            _select_accumulators(s.body), _packet_element_accumulators(s.body),
            _counter_copies(s.body, s.var)))
    return hit[1]


class _Walker:
    def __init__(self, hook: tir.Function, started: tuple[tir.Function, ...] = ()) -> None:
        precise = _Precise(hook)
        # The timer handlers being walked (this hook's included): the kernel verifies a
        # handler as a callback of every program that starts its timer, so a start charges
        # the handler's walk (once per path; not again inside itself: the kernel prunes the
        # same callback pushed from its own body).
        self.started = started + (hook,)
        self.handlers: dict[tir.Function, _Walker] = {}
        self.branching = precise.branching
        self.bounding = precise.bounding
        self.insns = 0.0
        self.processed = 0.0
        self.by_line: dict[tuple[str, int], float] = {}
        self._unroll = 1.0       # static copies of the current code (loops unrolled)
        self.later: frozenset[tir.Var] = frozenset()
        self.untested: set[tir.Var] = set()
        # How the two sides of each `if` (by id) met when last walked: `difference`'s kind.
        self.if_joins: dict[int, str] = {}
        # For each call (by id) last walked whose returns are constants: the states that
        # come back true, false, and either.
        self.call_outcomes: dict[int, tuple[float, float, float]] = {}

    # ---------------------------------------------------------------- statements
    def block(self, body: tuple[tir.Stmt, ...], m: float, paths: _Paths) -> float:
        outer = self.later
        tails = _tails(body)
        for s, tail in zip(body, tails):
            if m <= 0:
                break
            self.later = outer | tail   # variables read after this statement
            m = self.stmt(s, m, paths)
        self.later = outer
        return m

    def charge(self, n: float, m: float, span: object, walked: float | None = None) -> None:
        """`n` instructions on each of `m` paths; `walked`: what the verifier processes
        per path when that is more than `n` (a loop inside one operation)."""
        # Lookups not yet tested for None each split the paths in two until their test.
        if self.untested:
            m = m * (2 ** min(len(self.untested & self.later), 16))
        per_path = n if walked is None else walked
        self.insns += n * self._unroll
        self.processed = min(self.processed + per_path * m, _CAP)
        key = (getattr(span, "file", ""), getattr(span, "line", 0))
        self.by_line[key] = self.by_line.get(key, 0.0) + per_path * m

    def stmt(self, s: tir.Stmt, m: float, paths: _Paths) -> float:
        if isinstance(s, tir.Assign):
            m = self.expr(s.value, m)
            self.untested.discard(s.var)
            if isinstance(s.value, (tir.PacketHeader, tir.MapGet, tir.QueuePop)) \
                    and s.var in self.later:
                self.untested.add(s.var)   # null on one path, a reference on the other
            self.charge(1, m, s.span)
            if _materialized_bool(s.value) and s.var in self.branching:
                m *= 2  # 0 and 1 on two paths, and a later branch tells them apart
            return m
        if isinstance(s, tir.Store):
            m = self.place(s.place, m)
            m = self.expr(s.value, m)
            if s.op:
                cost, paths_added = _operator(s.op, s.value, getattr(s.place.type, "signed", False))
                self.charge(cost - 1, m, s.span)
                m += paths_added
            extra = 1 + (1 if s.op else 0) + (2 if isinstance(s.place, tir.IndexPlace) else 0)
            self.charge(extra + 1, m, s.span)
            if _materialized_bool(s.value):
                m *= 2  # stored 0 and 1 leave different stack slot states (zero vs. misc)
            return m
        if isinstance(s, tir.CopyStruct):
            m = self.place(s.place, m)
            m = self.expr(s.value, m)
            size = getattr(s.place.type, "size", 8)
            self.charge(2 * ((size + 7) // 8) + 1, m, s.span)
            return m
        if isinstance(s, tir.ExprStmt):
            return self.expr(s.value, m)
        if isinstance(s, tir.Return):
            if s.value is not None:
                m = self.expr(s.value, m)
            self.charge(2, m, s.span)
            paths.returns.append(m)
            paths.return_values.append(s.value.value if isinstance(s.value, tir.Const) else object())
            return 0.0
        if isinstance(s, tir.Break):
            paths.breaks.append(m)
            return 0.0
        if isinstance(s, tir.Continue):
            paths.continues.append(m)
            return 0.0
        if isinstance(s, tir.If):
            if isinstance(s.test, tir.Const):   # LLVM removes the dead arm
                return self.block(s.body if s.test.value else s.orelse, m, paths)
            m = self.expr(s.test, m)
            self.charge(1, m, s.span)
            self.untested -= _none_tested(s.test)
            m_true, m_false = self.outcomes(s.test, m)
            mt = self.block(s.body, m_true, paths)
            mf = self.block(s.orelse, m_false, paths)
            if mt > 0 and mf > 0 and self.tests_reference(s.test, self.later):
                # One path knows the reference is null, the other that it is not: the
                # verifier keeps both states as long as the reference lives.
                self.if_joins[id(s)] = "reference"
                return mt + mf
            self.if_joins[id(s)] = self.difference(s.body + s.orelse)
            return self.join(s.body + s.orelse, mt, mf)
        if isinstance(s, tir.Locked):
            m = self.place(s.lock, m)
            self.charge(6, m, s.span)
            return self.block(s.body, m, paths)
        if isinstance(s, tir.Loop):
            return self.loop(s, m, paths)
        raise AssertionError(f"unknown statement {s!r}")

    def join(self, arms: tuple[tir.Stmt, ...], mt: float, mf: float) -> float:
        """States after two paths meet (see the module docstring)."""
        if mt <= 0 or mf <= 0:
            return mt + mf
        kind = self.difference(arms)
        if kind == "exact":
            return mt + mf      # exact values differ: no state subsumes another
        if kind == "range":
            return max(mt, mf) + 1  # value ranges: the verifier soon covers them with one range
        return max(mt, mf)

    def tests_reference(self, test: tir.Expr, live: frozenset[tir.Var]) -> bool:
        """Whether a condition tests for None a reference that is still read afterwards."""
        if isinstance(test, tir.IsNone):
            return isinstance(test.operand, tir.VarRef) and test.operand.var in live
        if isinstance(test, tir.Logic):
            return self.tests_reference(test.left, live) or self.tests_reference(test.right, live)
        if isinstance(test, tir.Not):
            return self.tests_reference(test.operand, live)
        return False

    def difference(self, body: tuple[tir.Stmt, ...], skip: tir.Var | None = None) -> str:
        """How the states of paths through `body` can differ: "exact", "range" or "none"."""
        assigned: dict[tir.Var, bool] = {}
        _assigned(body, assigned)
        assigned.pop(skip, None)  # type: ignore[arg-type]
        # Only what is read later keeps states apart: the verifier's liveness lets it
        # prune a state against one that differs only in dead registers and slots.
        assigned = {v: exact for v, exact in assigned.items() if v in self.later}
        if any(exact and v in self.branching for v, exact in assigned.items()):
            return "exact"
        if any(v in self.bounding for v in assigned):
            return "range"
        return "none"

    def loop(self, s: tir.Loop, m: float, paths: _Paths) -> float:
        """Walk the verifier's unrolling: states entering iteration k+1 are an affine
        function of those entering iteration k, learnt by walking the body twice."""
        m = self.expr(s.stop, m)
        saved = (self.insns, self.processed, dict(self.by_line), self._unroll)
        outer_later = self.later
        # What the next iteration reads before writing it stays live across the back edge.
        facts = _loop_facts(s)
        self.later = outer_later | facts.exposed
        walks = []
        for start in (1.0, 2.0):
            self.insns, self.processed, self.by_line = saved[0], 0.0, {}
            self._unroll = saved[3] * max(s.bound, 1)
            inner = _Paths()
            self.charge(3, start, s.span)
            end = self.block(s.body, start, inner)
            nxt = self.join(s.body, end, sum(inner.continues))  # the paths meet at the head
            walks.append((self.processed, dict(self.by_line), nxt,
                          sum(inner.breaks), sum(inner.returns)))
        self.later = outer_later
        insns_after_unroll = self.insns
        (p1, lines1, n1, b1, r1), (p2, lines2, n2, b2, r2) = walks
        self.insns, self.processed, self.by_line, self._unroll = \
            insns_after_unroll, saved[1], saved[2], saved[3]
        # next = slope * cur + base (clamped: the two walks may not be exactly affine)
        slope, base = max(n2 - n1, 0.0), max(2 * n1 - n2, 0.0)
        if not isinstance(s.stop, tir.Const):
            base += 1   # a runtime bound: each iteration also tests it both ways
        # Inside a loop the counter makes every iteration's states new, so the verifier
        # cannot prune against earlier iterations: each branch of the body can leave one
        # more state to carry on (measured: a `max` and a helper per iteration of 16 gave
        # 108 states).
        # A branch whose sides assign nothing read later (in the body, the next iteration
        # or after the loop) meets itself at its end: the verifier prunes one side against
        # the other there, so it carries no more states on (measured: an SRPT rank, 8x8
        # iterations of a compare counting into a rank that bounds nothing, 91
        # instructions processed per step). The walks above recorded how each `if` joined.
        base += _branch_points(s.body, lambda node: self.if_joins.get(id(node)) == "none")
        staying = facts.staying
        # A branch that leaves the loop on an `and`/`or` of comparisons, one of which
        # compares a value that changes every iteration (`if x != i and y != 224 and y < -2:
        # break`), stays in the loop on several paths (one per comparison that can fail),
        # and each learnt something different: LLVM keeps the field `x` in a register
        # across iterations, `x == i` makes it the constant i, later iterations decide that
        # comparison, so the verifier keeps the states apart (one "leaving" state carried
        # on under-counted 7x). Two paths: one more state per iteration, as for nested
        # `if`s (measured: 1,031 and 3,839 processed at 16 and 32 iterations, quadratic).
        # Three or more: their walks multiply (measured, three comparisons: 151, 6,809,
        # over 1,000,000 and 284,231 at 8, 16, 24, 32 iterations; four: 752 and 23,596 at
        # 8 and 16).
        base += sum(n - 1 for n in staying)
        if any(n >= 3 for n in staying):
            slope = max(slope, 2.0)
        if facts.select_accumulators & self.branching:
            # A precisely tracked value accumulating what a select chose (`t += min(x,
            # C)`): each iteration's choices give new ranges the verifier keeps apart.
            # Measured: 16 iterations of `flow.total += min(u8 field, 182)`, with
            # flow.total a packet index afterwards: 47,815 instructions processed,
            # growing about 1.5 times per iteration.
            slope = max(slope, 2.0)
        if facts.element_accumulators & self.branching:
            # A precise sum of packet elements read at a runtime index (`s += h.w[i]`, then
            # `s` an offset): each iteration leaves states for element-or-0 that the
            # verifier keeps apart. Measured: ipv4_checksum's 10 words, its result a view's
            # offset: 81 walks of the element's check, 2,040 instructions processed.
            base += 2
        p_slope, p_base = p2 - p1, 2 * p1 - p2        # processed per iteration
        cur, exits, returns = m, 0.0, 0.0
        iterations = 0
        entering = 0.0                              # Σ states entering an iteration
        for _ in range(s.bound):
            iterations += 1
            entering += cur
            per_iteration = max(p_slope * cur + p_base, min(p1, p2 / 2) * cur, 0.0)
            self.processed = min(self.processed + per_iteration, _CAP)
            exits += (b2 - b1) * cur + (2 * b1 - b2)
            returns += (r2 - r1) * cur + (2 * r1 - r2)
            cur = min(max(slope * cur + base, 0.0), _CAP)
            if cur <= 0 or self.processed >= _CAP:
                break
        for k in sorted(lines1.keys() | lines2.keys()):   # sorted: the same `hottest` every run
            one, two = lines1.get(k, 0.0), lines2.get(k, 0.0)
            share = (two - one) * entering + (2 * one - two) * iterations
            self.by_line[k] = min(self.by_line.get(k, 0.0) + share, _CAP)
        self.charge(1, m, s.span)                   # the final exit test
        if returns:
            paths.returns.append(returns)
            paths.return_values.append(object())
        kind = self.difference(s.body, skip=s.var)
        runtime_stop = not isinstance(s.stop, tir.Const)
        if kind == "none" and (runtime_stop or exits) \
                and any(v in self.later and v in self.branching
                        for v in facts.counter_copies):
            # A precise variable given the counter's value (`size = k`) leaves each
            # iteration with its own constant: the exits stay apart after the loop, one
            # state per iteration count (measured: `size = k` in a loop of up to 16, size
            # the seed of a checksum whose value divides: 17 walks of the checksum).
            return min(max(m, cur, m * (iterations + 1)) + exits, _CAP)
        if kind == "none":
            ends = [cur > 0, exits > 0, runtime_stop]
            return m if any(ends) else 0.0
        if kind == "exact":
            # Each iteration can leave with its own exact state.
            after = exits + cur + (m * iterations if runtime_stop else 0.0)
            return min(max(after, m), _CAP)
        return max(m, cur) + (iterations if (exits or runtime_stop) else 1)

    # ---------------------------------------------------------------- expressions
    def place(self, p: tir.Place, m: float) -> float:
        m = self.expr(p.base, m)
        if isinstance(p, tir.IndexPlace):
            m = self.expr(p.index, m)
            if isinstance(p.index, tir.Const):
                self.charge(2, m, p.span)
            elif p.in_packet:
                # Bounds check, then a data_end check on the element: two more branches the
                # verifier walks on every use.
                self.charge(40, m, p.span)
            else:
                self.charge(12, m, p.span)
        return m

    def expr(self, e: tir.Expr, m: float) -> float:
        name = type(e).__name__
        if isinstance(e, tir.Const):
            self.charge(2 if not -(1 << 31) <= e.value < (1 << 31) else 1, m, e.span)
            return m
        if isinstance(e, tir.VarRef):
            return m
        if isinstance(e, tir.Call):
            for a, p in zip(e.args, e.func.params):
                m = self.expr(a, m)
                if _materialized_bool(a) and p in self.branching:
                    m *= 2  # a 0/1 argument the callee branches on
            return self.call(e, m)
        if isinstance(e, tir.Cond):
            if isinstance(e.test, tir.Const):
                return self.expr(e.body if e.test.value else e.orelse, m)
            m = self.expr(e.test, m)
            self.charge(2, m, e.span)
            mb = self.expr(e.body, m)
            mo = self.expr(e.orelse, m)
            return max(mb, mo)
        if isinstance(e, tir.Logic):
            m = self.expr(e.left, m)
            self.charge(2, m, e.span)
            return self.expr(e.right, m)
        if isinstance(e, (tir.Load, tir.AddrOf)):
            m = self.place(e.place, m)
            self.charge(2, m, e.span)
            return m
        if isinstance(e, tir.NewStruct):
            self.charge((e.struct.size + 7) // 8 + 1, m, e.span)
            for f, v in e.inits:
                m = self.expr(v, m)
                size = getattr(f.type, "size", 8)
                self.charge(1 if size <= 8 else 2 * ((size + 7) // 8), m, e.span)
                if _materialized_bool(v):
                    m *= 2  # stored 0 and 1 leave different stack slot states (zero vs. misc)
            return m
        if isinstance(e, tir.Binary):
            m = self.expr(e.left, m)
            m = self.expr(e.right, m)
            cost, paths_added = _operator(e.op, e.right, e.type.signed)
            self.charge(cost, m, e.span)
            return m + paths_added
        if isinstance(e, tir.MinMax):
            for a in e.args:
                m = self.expr(a, m)
            self.charge(3 * (len(e.args) - 1), m, e.span)
            return m
        if isinstance(e, tir.PacketChecksum):
            for part in (e.offset, e.length, e.seed):
                m = self.expr(part, m)
            # A loop of CHECKSUM_MAX_BYTES / CHECKSUM_CHUNK pieces, walked once per piece with
            # a few states each (measured: 11,757 processed for the whole 64-piece walk
            # followed by five branches); its exits merge, so the paths do not multiply.
            self.charge(_CHECKSUM_INSNS, m, e.span, walked=_CHECKSUM_WALK)
            return m
        if isinstance(e, tir.PacketResize):
            m = self.expr(e.delta, m)
            grown = _zeroed_head_bytes(e)
            # The helper, its result test, and for a grown head the bounds check and the
            # byte stores that zero the new bytes.
            self.charge(_HELPER["PacketResize"] + (6 + grown if grown else 0), m, e.span)
            return m
        if isinstance(e, tir.Builtin):
            self.charge(_BUILTIN.get(e.name, 2), m, e.span)
            return m
        if isinstance(e, tir.TimerStart) and e.handler is not None \
                and e.handler not in self.started:
            inner = self.handlers.get(e.handler)
            if inner is None:
                inner = self.handlers[e.handler] = _walk(e.handler, self.started)
            # its code is counted once (estimate_hook); its walk on every path starting it
            self.charge(0, m, e.span, walked=inner.processed)
        # Every other node: its operands, then its own cost.
        for slot in e.__slots__:
            v = getattr(e, slot)
            if isinstance(v, (tir.FieldPlace, tir.IndexPlace)):
                m = self.place(v, m)
            elif hasattr(v, "type") and hasattr(v, "span") and not isinstance(v, (tir.Var, StructType)):
                m = self.expr(v, m)
        self.charge(_HELPER.get(name, 2), m, e.span)
        return m

    def outcomes(self, test: tir.Expr, m: float) -> tuple[float, float]:
        """The states going each way at a branch on `test`: all of them both ways, but
        for a call whose returns are constants, where each state goes one way only (the
        verifier knows its constant and decides the branch)."""
        negate = False
        while isinstance(test, tir.Not):
            test, negate = test.operand, not negate
        split = self.call_outcomes.get(id(test)) if isinstance(test, tir.Call) else None
        if split is None:
            return m, m
        true, false, other = split
        yes, no = true + other, false + other
        return (no, yes) if negate else (yes, no)

    def call(self, e: tir.Call, m: float) -> float:
        paths = _Paths()
        self.charge(1, m, e.span)
        end = self.block(e.func.body, m, paths)
        outs = paths.returns + ([end] if end > 0 else [])
        if not outs:
            return 0.0
        if not _distinct_returns(e.func):
            return max(outs)
        # Different return values leave different states behind: those paths stay apart.
        # Returns of the same constant meet in one state: what else differs between them
        # is the callee's own (its locals), dead once it has returned (measured: a match
        # helper with four `return False` and one `return True`, called 4 times in an
        # if/elif chain, 222 instructions processed where one state per return statement
        # gave 43,500).
        groups: dict[object, float] = {}
        for value, n in zip(paths.return_values + [object()], outs):
            groups[value] = max(groups.get(value, 0.0), n)
        total = min(sum(groups.values()), _CAP)
        true = sum(n for v, n in groups.items() if isinstance(v, int) and v != 0)
        false = groups.get(0, 0.0)
        self.call_outcomes[id(e)] = (true, false, total - true - false)
        return total


def _none_tested(test: tir.Expr) -> set[tir.Var]:
    """Variables a condition tests for None."""
    out: set[tir.Var] = set()
    stack: list[object] = [test]
    while stack:
        n = stack.pop()
        if isinstance(n, tir.IsNone) and isinstance(n.operand, tir.VarRef):
            out.add(n.operand.var)
        elif isinstance(n, tir.Logic):
            stack += [n.left, n.right]
        elif isinstance(n, tir.Not):
            stack.append(n.operand)
    return out


def _has_select(e: object) -> bool:
    """Whether an expression contains a value chosen by a branch (min, max, a conditional
    expression, division or shift fix-ups)."""
    stack: list[object] = [e]
    while stack:
        n = stack.pop()
        if isinstance(n, (tir.MinMax, tir.Cond)):
            return True
        if isinstance(n, tir.Binary) and _hidden_branches(n):
            return True
        stack.extend(tir.children(n))
    return False


def _packet_element_accumulators(body: tuple[tir.Stmt, ...]) -> set[tir.Var]:
    """Variables of `body` that add up elements of a packet array read at a runtime index
    (`s += h.w[i]`): the lowering re-checks each element against the packet's end, and the
    element or 0 is added, two values a precise sum keeps apart."""
    out: set[tir.Var] = set()

    def packet_element(e: object) -> bool:
        stack: list[object] = [e]
        while stack:
            n = stack.pop()
            if isinstance(n, tir.Load) and isinstance(n.place, tir.IndexPlace) \
                    and n.place.in_packet and not isinstance(n.place.index, tir.Const):
                return True
            stack.extend(tir.children(n))
        return False
    for st in body:
        if isinstance(st, tir.Assign):
            refs: set[tir.Var] = set()
            _refs(st.value, refs)
            if st.var in refs and packet_element(st.value):
                out.add(st.var)
        elif isinstance(st, tir.If):
            out |= _packet_element_accumulators(st.body) | \
                _packet_element_accumulators(st.orelse)
        elif isinstance(st, (tir.Loop, tir.Locked)):
            out |= _packet_element_accumulators(st.body)
    return out


def _select_accumulators(body: tuple[tir.Stmt, ...]) -> set[tir.Var]:
    """Variables of `body` (scalars, and structs on the stack) that add up values chosen
    by a branch: `x = x + min(a, b)`, `s.total += max(a, b)`."""
    out: set[tir.Var] = set()
    for st in body:
        if isinstance(st, tir.Assign):
            refs: set[tir.Var] = set()
            _refs(st.value, refs)
            if st.var in refs and _has_select(st.value):
                out.add(st.var)
        elif isinstance(st, tir.Store) and st.op is not None:
            root = tir.root_var(st.place.base)
            if root is not None and isinstance(root.type, StructType) \
                    and (_has_select(st.value) or _hidden_branches(st)):
                out.add(root)
        elif isinstance(st, tir.If):
            out |= _select_accumulators(st.body) | _select_accumulators(st.orelse)
        elif isinstance(st, (tir.Loop, tir.Locked)):
            out |= _select_accumulators(st.body)
    return out


def _leaves(body: tuple[tir.Stmt, ...]) -> bool:
    """Whether every path through `body` leaves the loop it is in (`break` or `return`)."""
    if not body:
        return False
    last = body[-1]
    if isinstance(last, (tir.Break, tir.Return)):
        return True
    return isinstance(last, tir.If) and _leaves(last.body) and _leaves(last.orelse)


def _plain_test(test: tir.Expr) -> bool:
    """A condition the lowering turns into branches only: comparisons, a None test, and
    `and`/`or`/`not` of comparisons. None tests joined by `and`/`or` are lowered to 0/1
    values (so LLVM cannot merge them, see etran.lower) that LLVM may keep in registers
    across the loop's back edge (it rotates the exit test to the loop's top), and the
    verifier tracks them (measured: `if flow is None or tcp is not None: break` in a loop
    of 15, about 150 instructions processed per step for 30 in the body)."""
    while isinstance(test, tir.Not):
        test = test.operand
    if isinstance(test, tir.IsNone):
        return True
    stack: list[object] = [test]
    while stack:
        n = stack.pop()
        if isinstance(n, tir.IsNone):
            return False
        if not isinstance(n, (tir.Compare, tir.Logic, tir.Not)):
            continue
        stack.extend(tir.children(n))
    return isinstance(test, (tir.Compare, tir.Logic))


def _registers_only(body: tuple[tir.Stmt, ...]) -> bool:
    """Whether `body` changes nothing but variables and memory the verifier does not track
    (map values and packet bytes through checked references): no struct built, copied or
    stored on the stack (two paths whose stack slots differ stay apart: measured, a
    `Flow(...)` built in one side of a test in a loop of 9, 164 instructions processed
    per step for 40 in the body), and no calls or loops."""
    stack: list[object] = list(body)
    while stack:
        n = stack.pop()
        if isinstance(n, (tir.NewStruct, tir.CopyStruct, tir.Call, tir.Loop)):
            return False
        if isinstance(n, tir.Store):
            root = tir.root_var(n.place.base)
            if root is None or not isinstance(root.type, OptionalType):
                return False     # a struct on the stack (or a parameter: maybe one)
        stack.extend(tir.children(n))
        if isinstance(n, (tir.If, tir.Locked)):
            stack.extend(n.body)
            stack.extend(getattr(n, "orelse", ()))
    return True


def _jumps(body: tuple[tir.Stmt, ...]) -> bool:
    """Whether `body` can end in `break`, `continue` or `return` (not inside nested loops):
    its side then meets the other elsewhere than at the end of the `if`."""
    for st in body:
        if isinstance(st, (tir.Break, tir.Continue, tir.Return)):
            return True
        if isinstance(st, tir.If) and (_jumps(st.body) or _jumps(st.orelse)):
            return True
        if isinstance(st, tir.Locked) and _jumps(st.body):
            return True
    return False


def _quiet_decisions(body: tuple[tir.Stmt, ...], quiet: Callable[[tir.If], bool]) -> set[int]:
    """The nodes of `body` (by id) whose outcomes carry no more states into the next
    iteration: each `if` with a plain test (`_plain_test`) and exactly one side leaving
    the loop, or whose sides meet at its end (no jumps, `_registers_only`) differing in
    nothing the verifier keeps apart (`quiet(if_statement)`), with the tests in its
    condition; the lookups and views whose None a leaving `if` tests (one tested by an
    `if` whose sides meet still splits the states: skipping it under-counted 1.07x); and
    a value chosen by `min`/`max` or `x if c else y` only stored in less than 8 bytes
    (the stack slot then holds unknown bytes, which the verifier does not track). Not
    inside nested loops or called functions (a `return` there does not leave this loop)."""
    skip: set[int] = set()
    exit_vars: set[tir.Var] = set()
    assigns: list[tir.Assign] = []

    def walk(stmts: tuple[tir.Stmt, ...]) -> None:
        for st in stmts:
            if isinstance(st, tir.Assign):
                assigns.append(st)
            elif isinstance(st, tir.If):
                leaving = _leaves(st.body) != _leaves(st.orelse)
                meets = not (_jumps(st.body) or _jumps(st.orelse)) \
                    and _registers_only(st.body) and _registers_only(st.orelse)
                if _plain_test(st.test) and (leaving or (meets and quiet(st))):
                    skip.add(id(st))
                    tests: list[object] = [st.test]
                    while tests:
                        t = tests.pop()
                        if isinstance(t, (tir.Logic, tir.Not, tir.IsNone, tir.Compare)):
                            skip.add(id(t))
                            tests.extend(tir.children(t))
                    if leaving:
                        exit_vars.update(_none_tested(st.test))
                walk(st.body)
                walk(st.orelse)
            elif isinstance(st, tir.Locked):
                walk(st.body)

    walk(body)
    stack: list[object] = list(body)
    while stack:
        n = stack.pop()
        if isinstance(n, tir.Loop):
            continue
        if isinstance(n, tir.Store) and n.op is None and isinstance(n.value, (tir.MinMax, tir.Cond)) \
                and getattr(n.place.type, "size", 8) < 8:
            skip.add(id(n.value))
        if isinstance(n, (tir.If, tir.Locked)):
            stack.extend(n.body)
            stack.extend(getattr(n, "orelse", ()))
    for a in assigns:
        if a.var in exit_vars and isinstance(a.value, (tir.PacketHeader, tir.MapGet,
                                                       tir.QueuePop)):
            skip.add(id(a.value))
    return skip


def _test_paths(test: tir.Expr) -> tuple[int, int]:
    """The paths through a condition's short-circuit code that end true, and false."""
    if isinstance(test, tir.Not):
        true, false = _test_paths(test.operand)
        return false, true
    if isinstance(test, tir.Logic):
        lt, lf = _test_paths(test.left)
        rt, rf = _test_paths(test.right)
        if test.op == "and":
            return lt * rt, lf + lt * rf
        return lt + lf * rt, lf * rf
    return 1, 1


def _compares_varying(test: tir.Expr, varying: set[tir.Var]) -> bool:
    """Whether a condition compares a value computed from `varying` (not only indexed by
    it) with one that is not a constant: what the comparison teaches the verifier about the
    other operand is new at every iteration."""
    def values(e: object, out: set[tir.Var]) -> None:
        stack: list[object] = [e]
        while stack:
            n = stack.pop()
            if isinstance(n, tir.VarRef):
                out.add(n.var)
            elif isinstance(n, tir.IndexPlace):
                stack.append(n.base)     # an element: its index picks it, it is not compared
            else:
                stack.extend(tir.children(n))

    stack: list[object] = [test]
    while stack:
        n = stack.pop()
        if isinstance(n, tir.Compare):
            for one, other in ((n.left, n.right), (n.right, n.left)):
                reads: set[tir.Var] = set()
                values(one, reads)
                if reads & varying and not isinstance(other, tir.Const):
                    return True
        elif isinstance(n, (tir.Logic, tir.Not)):
            stack.extend(tir.children(n))
    return False


def _staying_paths(body: tuple[tir.Stmt, ...], varying: set[tir.Var]) -> list[int]:
    """For each `if` of `body` with exactly one side leaving the loop and a plain test
    (`_plain_test`) comparing a value that changes every iteration (`_compares_varying`:
    from the loop's counter or what the body assigns, in `varying`): the paths through its
    test that stay in the loop when there are several (`a and b and c` leaving on true:
    three, one per comparison that fails). Not inside nested loops or called functions, as
    for `_quiet_decisions`."""
    out: list[int] = []

    def walk(stmts: tuple[tir.Stmt, ...]) -> None:
        for st in stmts:
            if isinstance(st, tir.If):
                body_leaves, orelse_leaves = _leaves(st.body), _leaves(st.orelse)
                if body_leaves != orelse_leaves and _plain_test(st.test) \
                        and _compares_varying(st.test, varying):
                    true, false = _test_paths(st.test)
                    n = false if body_leaves else true
                    if n > 1:
                        out.append(n)
                walk(st.body)
                walk(st.orelse)
            elif isinstance(st, tir.Locked):
                walk(st.body)

    walk(body)
    return out


def _branch_points(body: tuple[tir.Stmt, ...], quiet: Callable[[tir.If], bool]) -> int:
    """Conditional branches in the code of `body` that can each leave one more state for
    the next iteration (not counting nested loops' own bodies; `quiet` as for
    `_quiet_decisions`).

    A branch with one side leaving the loop (`if v is None: break`, `if off >= end:
    return ...`) carries one state on, not two; nor does the lookup or view whose None
    that branch tests (measured: a loop of 730 steps taking a packet view per step and
    breaking when it is None, 26 instructions processed per step, no growth)."""
    skip = _quiet_decisions(body, quiet)
    count = 0
    stack: list[object] = list(body)
    tested: set[int] = set()    # helper results a test or a discarded call uses as such
    while stack:
        n = stack.pop()
        for t in _tested_operands(n):
            while isinstance(t, tir.Not):
                t = t.operand
            tested.add(id(t))
        if id(n) in skip:
            pass
        elif isinstance(n, _HELPER_BOOLS) and id(n) not in tested:
            # A helper's result used as a value (`Stats(last=m.replace(k, v))`): the call
            # returns an error code, so its 0/1 is chosen by a branch on r0 (measured: a
            # record holding a map update's result output 87 times, 125 instructions
            # processed per iteration for 34 in the body; counting no branch there
            # under-counted 1.29x)
            count += 1
        elif isinstance(n, (tir.If, tir.Logic, tir.IsNone, tir.PacketHeader, tir.MapGet,
                            tir.QueuePop)):
            count += 1
        elif isinstance(n, (tir.Cond, tir.MinMax)):
            count += 2   # a value chosen by a branch: each choice is a different state
        elif isinstance(n, (tir.Binary, tir.Store)):
            count += _hidden_branches(n)
        elif isinstance(n, tir.PacketResize):
            # The helper's result is tested, and a grown head is zeroed behind a bounds
            # check (measured: `resize_head(8)` in a loop of 16, 59 instructions processed
            # per iteration for 20 in the body).
            count += 1
        if isinstance(n, tir.Loop):
            if not isinstance(n.stop, tir.Const):
                # A nested loop with a runtime bound leaves after a different number of
                # turns on different paths, one more state for the enclosing loop to carry
                # (measured: `for j in range(1, min(x, 2))` inside a loop of 16, 32: 4,178
                # and 12,850 processed, quadratic; with the inner loop a plain block, 2,322
                # and 4,153)
                count += 1
            continue
        if isinstance(n, tir.Call):
            stack.extend(n.func.body)
        stack.extend(tir.children(n))
    return count


def _tested_operands(n: object) -> tuple[object, ...]:
    """What `n` uses as a truth value or discards: an `if`'s test, the operands of `and`,
    `or` and `not`, a call statement's value."""
    if isinstance(n, tir.If):
        return (n.test,)
    if isinstance(n, tir.ExprStmt):
        return (n.value,)
    if isinstance(n, tir.Not):
        return (n.operand,)
    if isinstance(n, tir.Logic):
        return (n.left, n.right)
    return ()


def _operator(op: str, right: tir.Expr, signed: bool) -> tuple[int, int]:
    """Instructions for `left op right`, and the paths its hidden branches add.

    BPF has no select: the fix-ups the lowering adds (division by zero, floor division
    and modulo of signed values, shift counts at or above the width) are branches whose
    outcomes leave different values, which the verifier carries on separately."""
    runtime = not isinstance(right, tir.Const)
    if op in ("//", "%"):
        if signed:
            return (30, 4) if runtime else (16, 2)
        return (4, 0) if runtime else (1, 0)
    if op in ("<<", ">>") and runtime:
        return 8, 1     # the count is tested against the width
    return 1, 0


def _hidden_branches(n: tir.Binary | tir.Store) -> int:
    """Branches the lowering adds to an operator with a runtime right operand: BPF has
    no select, so the division-by-zero and shift-width fix-ups are conditional jumps
    (measured: `pkt.len // flow.total` in a loop of 16: 1,266 instructions processed for
    a 17-instruction body, the zero test's path walking on into the next iteration)."""
    if isinstance(n, tir.Binary):
        op, right, signed = n.op, n.right, n.type.signed
    elif n.op is not None:
        op, right, signed = n.op, n.value, getattr(n.place.type, "signed", False)
    else:
        return 0
    if op in ("//", "%") and not signed and not isinstance(right, tir.Const):
        return 1        # the zero test
    return _operator(op, right, signed)[1]


def _zeroed_head_bytes(e: tir.PacketResize) -> int:
    """Bytes a resize zeroes: a head grown by a constant (see etran.lower.expressions: zero_new_head)."""
    if e.where == "head" and isinstance(e.delta, tir.Const) and e.delta.value > 0:
        return int(e.delta.value)
    return 0


# Helpers whose result the language gives as a bool: the call returns an error code (or a
# pointer), so a use as a value is a test of r0.
_HELPER_BOOLS = (tir.MapSet, tir.MapDelete, tir.QueuePush, tir.RingOutput, tir.TimerStart,
                 tir.TimerCancel)


def _materialized_bool(e: tir.Expr) -> bool:
    """A comparison turned into a 0/1 value: BPF has no setcc, so LLVM emits a branch."""
    return isinstance(e, (tir.Compare, tir.Logic, tir.Not, tir.IsNone)) or (
        isinstance(e, tir.Convert) and _materialized_bool(e.operand))


def _distinct_returns(f: tir.Function) -> bool:
    """Whether a function's return statements can give different values."""
    values: list[int | None] = []

    def walk(body: tuple[tir.Stmt, ...]) -> None:
        for s in body:
            if isinstance(s, tir.Return) and s.value is not None:
                values.append(s.value.value if isinstance(s.value, tir.Const) else None)
            elif isinstance(s, tir.If):
                walk(s.body)
                walk(s.orelse)
            elif isinstance(s, (tir.Loop, tir.Locked)):
                walk(s.body)

    walk(f.body)
    return len(values) > 1 and (None in values or len(set(values)) > 1)


def _walk(hook: tir.Function, started: tuple[tir.Function, ...] = ()) -> _Walker:
    w = _Walker(hook, started)
    w.block(hook.body, 1.0, _Paths())
    return w


def _handlers_code(w: _Walker) -> float:
    """The instructions of the timer handlers a walk started, each once, and of theirs."""
    seen: dict[tir.Function, float] = {}
    todo = list(w.handlers.items())
    while todo:
        f, inner = todo.pop()
        if f not in seen:
            seen[f] = inner.insns
            todo += inner.handlers.items()
    return sum(seen.values())


def estimate_hook(hook: tir.Function) -> Estimate:
    with _remembering():
        w = _walk(hook)
    w.insns += _handlers_code(w)
    hottest = ""
    if w.by_line:
        (_file, line), amount = max(w.by_line.items(), key=lambda kv: kv[1])
        hottest = f"line {line} ({int(amount):,} instructions)"
    return Estimate(insns=int(w.insns * MARGIN) + SLACK,
                    processed=int(min(w.processed * MARGIN + SLACK, _CAP)),
                    stack=stack_bytes(hook), hottest=hottest)


def check_budget(program: tir.Program, sink: DiagnosticSink, advisory: bool = False,
                 compiled: Callable[[], bytes | str] | None = None) -> None:
    """Estimate every hook (kept in `program.budgets`) and report those over the kernel's
    limits. With `advisory`, an estimate over a limit is a warning and the kernel verifier
    decides (`--kernel-decides`: the estimate is pessimistic).

    A hook whose estimate is over the limit of processed instructions gets a second opinion
    when `compiled` is given: it compiles the program (the ELF, or a message saying why it
    could not) and `etran.analysis.replay` replays the verifier over the compiled
    instructions; if the replay's estimate is within the limit, it becomes the hook's
    estimate (`Estimate.replayed`) and the hook is accepted. Programs within the limit are
    never compiled here, so checking them costs what it always did."""
    over = []
    with _remembering():     # the hooks share their callees: their facts are found once
        for hook in program.hooks:
            est = estimate_hook(hook)
            program.budgets[hook.name] = est
            if est.processed > MAX_PROCESSED:
                over.append(hook.name)
    opinions = _second_opinions(program, over, compiled) if over and compiled else {}
    for hook in program.hooks:
        est = program.budgets[hook.name]
        error = sink.warning if advisory else sink.error
        if est.processed > MAX_PROCESSED:
            opinion = opinions.get(hook.name)
            replayed = opinion.estimate if opinion is not None else None
            if opinion is not None and opinion.waiting:
                _refuse_waiting(error, hook, opinion.waiting)
                continue
            if replayed is None or replayed > MAX_PROCESSED:
                second = ""
                if opinion is not None:
                    second = "; replayed over the compiled instructions, " + (
                        f"about {replayed:,}" if replayed is not None else opinion.why)
                _refuse(error, hook, est.processed, second, f"the largest part: {est.hottest}")
                continue
            est = program.budgets[hook.name] = replace(est, processed=replayed, replayed=True)
        if est.insns > MAX_INSNS:
            error(hook.name_span or hook.span, "budget",
                  f"`{hook.name}` compiles to about {est.insns:,} "
                  f"instructions; the kernel accepts at most {MAX_INSNS:,}")


REFINE_SECONDS = 10.0  # as long as the check's replay may take (replay.REPLAY_SECONDS)


def refine_estimates(program: tir.Program, elf: bytes) -> None:
    """Once the program is compiled (`elf`, without observation): every XDP, egress and gen
    hook's estimate tightened to the replay's (`etran.analysis.replay`: its count times
    MARGIN) where that is lower, flagged `replayed`. What the checker accepted does not
    change (a lower estimate refuses nothing more); what the tool reports next to the
    kernel's count once it has compiled (`verify`, `run`, `up`, `check --kernel-decides`,
    the campaigns) is then within 1.5x of it on most hooks instead of 7x (docs/verification.md).
    Where the replay counts more than the source estimate, that estimate was too low (the
    source model has missed, rarely, by a few percent): the replay's, above it, replaces
    it too. The replays stop after REFINE_SECONDS in all (the source estimate stays: a
    slow machine reports looser estimates, never lower ones). @timer handlers keep
    theirs: the kernel counts them inside each hook that starts their timer, whose
    estimate is refined."""
    import math
    import time

    from etran.analysis.replay import MARGIN, MAX_REPLAYED, Unsupported, explore, map_shapes
    maps = map_shapes(program)
    deadline = time.monotonic() + REFINE_SECONDS
    for hook in program.hooks:
        est = program.budgets.get(hook.name)
        if hook.hook == "timer" or est is None or est.replayed:
            continue
        try:
            res = explore(elf, hook.name, MAX_REPLAYED, maps, deadline)
        except Unsupported:
            continue
        if res.too_many_waiting:
            # the kernel refuses it whatever the count (check_refined says so)
            program.budgets[hook.name] = est = replace(est, waiting=res.waiting)
        tight = math.ceil(res.processed * MARGIN)
        if res.complete and (tight < est.processed or res.processed > est.processed):
            program.budgets[hook.name] = replace(est, processed=tight, replayed=True,
                                                 source=est.processed)


def check_refined(program: tir.Program, sink: DiagnosticSink, advisory: bool = False) -> None:
    """The check's verdict once compiled (`etran check` compiles every program): a hook whose
    refined estimate (`refine_estimates`: the replay's count times its margin) is over the
    kernel's limit is refused, as the source estimate's second opinion refuses one. The
    source model alone can be below the kernel's count (rarely, by up to 1.25x measured);
    once the replay has counted, the estimate the check shows is the one it decides by."""
    error = sink.warning if advisory else sink.error
    for hook in program.hooks:
        est = program.budgets.get(hook.name)
        if est is not None and est.waiting:     # set only when too many (refine_estimates)
            _refuse_waiting(error, hook, est.waiting)
            continue
        if est is None or not est.replayed or est.processed <= MAX_PROCESSED:
            continue
        source = f"the source estimate was about {est.source:,}; " if est.source else ""
        _refuse(error, hook, est.processed, " (replayed over the compiled instructions)",
                f"{source}the largest part: {est.hottest}")


def _refuse_waiting(error: Callable[..., None], hook: tir.Function, waiting: int) -> None:
    """The refusal of `hook`, whose replay left `waiting` branches waiting at once for the
    verifier (times the margin, over the kernel's JMP_SEQ_LIMIT; more than the limit
    itself: the replay stopped there)."""
    import math

    from etran.analysis.replay import JMP_SEQ_LIMIT, MARGIN
    many = (f"more than {JMP_SEQ_LIMIT:,}" if waiting > JMP_SEQ_LIMIT
            else f"about {math.ceil(waiting * MARGIN):,}")
    error(hook.name_span or hook.span, "budget",
          f"`{hook.name}` leaves {many} branches waiting at once for the verifier "
          f"(replayed over the compiled instructions); the kernel refuses more than "
          f"{JMP_SEQ_LIMIT:,} (\"the sequence of jumps is too complex\")",
          "a loop whose every turn may leave early (`break`, `return`) leaves one branch "
          "waiting per turn: fewer turns, or the exit tested after the loop",
          "`--kernel-decides` (on check, verify, build, run, fuzz and up) lets the kernel "
          "verifier decide")


def _refuse(error: Callable[..., None], hook: tir.Function, processed: int, how: str,
            largest: str) -> None:
    """The budget refusal of `hook`, estimated at `processed` (`how`: which estimate)."""
    error(hook.name_span or hook.span, "budget",
          f"`{hook.name}` may make the verifier process about {processed:,} "
          f"instructions{how}; the kernel stops at {MAX_PROCESSED:,}",
          largest,
          "lower loop bounds, or split the work across hooks or runs; the estimate is "
          "pessimistic: `--kernel-decides` (on check, verify, build, run, fuzz and up) lets "
          "the kernel verifier decide")


def _second_opinions(program: tir.Program, hooks: list[str],
                     compiled: Callable[[], bytes | str]) -> dict[str, Opinion]:
    """The replay's estimate of each hook (times its margin), or None and why there is none."""
    # imported here: `etran check` on a program within the limits never needs it
    from etran.analysis.replay import Opinion, second_opinion
    elf = compiled()
    if isinstance(elf, str):
        return {h: Opinion(None, f"cannot tell (it does not compile: {elf})") for h in hooks}
    return second_opinion(program, elf, hooks)

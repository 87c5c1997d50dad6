"""Type-checking function bodies: statements, loops, locks, returns.

Loop rules follow the verifier: a `for` loop runs over `range(...)` with a
bound known at compile time (`range(N)`, or `range(min(n, N))` for a runtime
count). A `with v.lock:` block may not call helpers, take another lock, or
leave early (`return`, or `break`/`continue` out of it): the verifier rejects
each of those.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from etran.check.calls import CallChecker
from etran.check.context import CheckFailed, LoopFrame
from etran.check.flow import Flow, join, join_all
from etran.dsl import ast
from etran.dsl.diagnostics import DiagnosticSink, Source, Span
from etran.ir import tir
from etran.ir.types import (
    ERROR,
    I32,
    U32,
    UNTYPED,
    ArrayType,
    IntType,
    OptionalType,
    PacketType,
    SpinLockType,
    StructType,
    TimerType,
    Type,
    UntypedInt,
    VoidType,
    common_int,
)


class BodyChecker(CallChecker):
    @contextmanager
    def speculative(self) -> Iterator[None]:
        """Check something without keeping its diagnostics or its effects on the function."""
        assert self.fn is not None
        fn = self.fn.function
        saved = (self.sink, self.flow, list(fn.effects), list(fn.call_sites), fn.stack_bytes,
                 fn.may_resize)
        self.sink = DiagnosticSink()
        try:
            yield
        finally:
            (self.sink, self.flow, effects, sites, fn.stack_bytes, fn.may_resize) = saved
            fn.effects[:] = effects
            fn.call_sites[:] = sites

    # ---------------------------------------------------------------- blocks
    def block(self, stmts: tuple[ast.Stmt, ...]) -> tuple[tir.Stmt, ...]:
        out: list[tir.Stmt] = []
        for s in stmts:
            try:
                r = getattr(self, "s_" + type(s).__name__)(s)
            except CheckFailed:
                if isinstance(s, (ast.Return, ast.Break, ast.Continue)):
                    self.flow = self.flow.dead()  # it still ends the path: no follow-on errors
                continue
            if r is not None:
                out.append(r)
        return tuple(out)

    # ---------------------------------------------------------------- assignment
    def s_Assign(self, s: ast.Assign) -> tir.Stmt | None:
        assert self.fn is not None
        if s.value is None:
            self.fail(s.span, "type", "a variable needs a value when it is declared",
                      "write `x: u32 = 0`")
        if isinstance(s.target, ast.Name):
            return self.assign_name(s.target, s.value, s.annotation, s.span)
        if s.annotation is not None:
            self.fail(s.annotation.span, "type", "only plain names take annotations")
        if isinstance(s.target, ast.Subscript):
            base = self.resolve(s.target.value)
            from etran.ir.types import MapType
            if isinstance(base, MapType):
                if len(s.target.index) != 1:
                    self.fail(s.target.span, "type", "a map takes one key")
                return tir.ExprStmt(self.map_set(base, s.target.index[0], s.value, 0, s.span), s.span)
        # Python evaluates the value, then the target: a call on the right that resizes the
        # packet must invalidate a view on the left. The target's type is looked up first,
        # without effects, so that constants on the right take it.
        with self.speculative():
            try:
                t: Type | None = self.place(s.target).type
            except CheckFailed:
                t = None
        if isinstance(t, (StructType, ArrayType)):
            v = self.value(s.value)
            place = self.place(s.target)
            if isinstance(v.type, OptionalType):
                self.none_error(s.value, v)
            if v.type != t and v.type is not t:
                self.fail(s.value.span, "type", f"cannot assign {v.type} to a field of type {t}")
            self.stack(t.size)  # the copy goes through a stack buffer (views may overlap)
            return tir.CopyStruct(place, v, s.span)
        v = self.value(s.value, t)
        place = self.place(s.target)
        v = self.coerce(v, place.type, s.value.span, "the assigned value")
        return tir.Store(place, v, None, s.span)

    def place(self, target: ast.Expr) -> tir.Place:
        if not isinstance(target, (ast.Attribute, ast.Subscript)):
            self.fail(target.span, "type", "cannot assign to this expression")
        r = self.resolve(target)
        if isinstance(r, tuple):
            self.fail(target.span, "type", "a SpinLock or Timer field cannot be assigned")
        if isinstance(r, (tir.Load, tir.AddrOf)):
            return r.place
        if isinstance(r, tir.Builtin):
            self.fail(target.span, "type", f"`{target.attr if isinstance(target, ast.Attribute) else 'this'}` "
                      "of a packet is read-only", "change the packet size with resize_head/resize_tail")
        self.fail(target.span, "type", "cannot assign to this expression")

    def declared_type(self, ann: ast.Expr) -> Type:
        t = self.fn.checker.resolve_type(ann, self.module, self.sink, "a variable")  # type: ignore[union-attr]
        if t is None:
            raise CheckFailed()
        if isinstance(t, (SpinLockType, TimerType, ArrayType)):
            self.fail(ann.span, "type", f"a local variable cannot be a {t}")
        from etran.ir.types import BeType
        if isinstance(t, BeType):
            return t.value_type
        return t

    def assign_name(self, target: ast.Name, value: ast.Expr, ann: ast.Expr | None,
                    span: Span) -> tir.Stmt | None:
        assert self.fn is not None
        name = target.id
        var = self.fn.locals.get(name)
        if var is None and self.module.lookup(name) is not None:
            self.fail(target.span, "name", f"`{name}` is a module-level name; it cannot be "
                      "assigned in a function", "choose another name for the local variable")
        declared = self.declared_type(ann) if ann is not None else None
        if var is not None and declared is not None and declared != var.type \
                and not (isinstance(var.type, OptionalType) and var.type.inner is declared):
            self.fail(ann.span, "type", f"`{name}` was already declared as {var.type}")  # type: ignore[union-attr]
        expected = declared or (var.type if var is not None else None)
        if var is None and declared is None and name in self.fn.single_constants:
            const = self.local_constant(value)
            if const is not None:
                # Assigned once, from a constant: a named constant, exact like a module one.
                self.fn.constants[name] = const
                return None
        try:
            v = self.value(value, expected if not isinstance(expected, OptionalType) else None)
            if var is None:
                t = declared or self.infer(v, value.span)
                if declared is not None and isinstance(v.type, OptionalType) \
                        and v.type.inner is declared:
                    t = v.type  # `c: Conn = m.get(k)` declares an Optional reference
                var = tir.Var(name, t, target.span)
                self.fn.locals[name] = var
                self.fn.function.locals.append(var)
            v = self.assign_value(var, v, value)
        except CheckFailed:
            # Keep the name (typed if declared), so its uses are checked or stay quiet,
            # instead of each reporting it as undefined or unassigned.
            if var is None:
                var = tir.Var(name, declared or ERROR, target.span)
                self.fn.locals[name] = var
            self.flow = self.flow.assign(var)
            raise
        self.flow = self.flow.assign(var)
        if isinstance(v.type, (StructType, OptionalType)):
            kind = self.packet_kind(v)
            if kind != "other":
                self.flow = self.flow.set_view(var, partial=kind == "mixed")
        if isinstance(v.type, (StructType, OptionalType)) and self.maybe_view(v):
            self.fn.maybe_views.add(var)  # an alias of a struct parameter
        origin = self.map_origin(v)
        if origin is not None:
            self.flow = self.flow.set_map_ref(var, origin)
        if isinstance(v.type, StructType) and isinstance(var.type, OptionalType):
            self.flow = self.flow.narrow(var)
        return tir.Assign(var, v, span)

    def local_constant(self, value: ast.Expr) -> tir.Const | None:
        """The value of `value` if it is an untyped constant expression, without reporting."""
        with self.speculative():
            try:
                v = self.value(value)
            except CheckFailed:
                return None
        if isinstance(v, tir.Const) and isinstance(v.type, UntypedInt):
            return v
        return None

    def infer(self, v: tir.Expr, span: Span) -> Type:
        """The type of a new variable from its first value: constants default to u64 or i64."""
        t = v.type
        if isinstance(t, UntypedInt):
            assert isinstance(v, tir.Const)
            from etran.ir.types import I64, U64
            return I64 if v.value < 0 else U64
        if isinstance(t, (VoidType, PacketType)):
            self.fail(span, "type", f"a {t} value cannot be stored in a variable")
        return t

    def assign_value(self, var: tir.Var, v: tir.Expr, node: ast.Expr) -> tir.Expr:
        vt, t = v.type, var.type
        if isinstance(t, OptionalType):
            if vt is t.inner or vt == t:
                return v
            self.fail(node.span, "type", f"`{var.name}` holds {t}, not {vt}")
        if isinstance(t, StructType):
            if isinstance(vt, OptionalType) and vt.inner is t:
                self.fail(node.span, "none-check", f"the value may be None, but `{var.name}` is "
                          f"a {t}", "assign it to a new name and check `if x is None:` first")
            if vt is not t:
                self.fail(node.span, "type", f"`{var.name}` holds {t}, not {vt}")
            return v
        return self.coerce(v, t, node.span, f"the value assigned to `{var.name}`")

    def s_AugAssign(self, s: ast.AugAssign) -> tir.Stmt:
        assert self.fn is not None
        if s.op == "/":
            self.fail(s.span, "type", "`/=` is true division", "use `//=`")
        if isinstance(s.target, ast.Name):
            cur = self.value(s.target)
            var = self.fn.locals.get(s.target.id)
            if var is None:
                self.fail(s.target.span, "name", f"`{s.target.id}` cannot be updated here")
            result = self.update(cur, s.op, s.value, s.span)
            self.flow = self.flow.assign(var)
            return tir.Assign(var, result, s.span)
        place = self.place(s.target)
        t = place.type
        from etran.ir.types import BeType
        vt = t.value_type if isinstance(t, BeType) else t
        if not isinstance(vt, IntType):
            self.fail(s.target.span, "type", f"`{s.op}=` needs an integer field, not {t}")
        cur = tir.Load(place, vt, s.target.span)
        result = self.update(cur, s.op, s.value, s.span)
        self.place(s.target)  # the store goes through the target again: still valid after the value?
        assert isinstance(result, tir.Binary)
        return tir.Store(place, result.right, s.op, s.span)

    def update(self, cur: tir.Expr, op: str, value: ast.Expr, span: Span) -> tir.Expr:
        """`cur op value` for an augmented assignment: the result keeps `cur`'s type."""
        t = cur.type
        if not isinstance(t, IntType):
            self.fail(span, "type", f"`{op}=` needs an integer, not {t}")
        v = self.value(value, t)
        if op in ("<<", ">>"):
            if isinstance(v.type, UntypedInt):
                assert isinstance(v, tir.Const)
                if v.value < 0:
                    self.fail(value.span, "constant", "negative shift count")
                from etran.ir.types import U64
                v = tir.Const(v.value, U64, v.span)
            elif not isinstance(v.type, IntType):
                self.fail(value.span, "type", "a shift count must be an integer")
            return tir.Binary(op, cur, v, t, span)
        v = self.coerce(v, t, value.span, "the right-hand side")
        return tir.Binary(op, cur, v, t, span)

    # ---------------------------------------------------------------- simple statements
    def s_ExprStmt(self, s: ast.ExprStmt) -> tir.Stmt:
        if not isinstance(s.value, ast.Call):
            self.fail(s.span, "no-effect", "this expression does nothing",
                      "assign its value or remove it")
        v = self.value(s.value)
        return tir.ExprStmt(v, s.span)

    def s_Pass(self, s: ast.Pass) -> None:
        return None

    def s_Break(self, s: ast.Break) -> tir.Stmt:
        return self.jump(s, "break")

    def s_Continue(self, s: ast.Continue) -> tir.Stmt:
        return self.jump(s, "continue")

    def jump(self, s: ast.Break | ast.Continue, word: str) -> tir.Stmt:
        assert self.fn is not None
        if not self.fn.loops:
            what = ("ends the innermost `for` loop" if word == "break"
                    else "starts the next iteration of the innermost `for` loop")
            self.fail(s.span, "syntax", f"`{word}` outside a loop",
                      f"`{word}` {what}; to leave the function, use `return`")
        frame = self.fn.loops[-1]
        if frame.lock_depth != self.fn.lock_depth:
            self.fail(s.span, "lock-exit", f"`{word}` would leave the `with` block while the lock "
                      "is held", "the verifier rejects exits that skip the unlock: set a flag "
                      "inside the block and act on it after")
        (frame.breaks if word == "break" else frame.continues).append(self.flow)
        self.flow = self.flow.dead()
        return tir.Break(s.span) if word == "break" else tir.Continue(s.span)

    def s_Return(self, s: ast.Return) -> tir.Stmt:
        assert self.fn is not None
        fn = self.fn.function
        if self.fn.lock is not None:
            self.fail(s.span, "lock-exit", "`return` inside a `with` block would leave the lock "
                      "held", "the verifier rejects it: compute the result inside, return after "
                      "the block")
        if isinstance(fn.returns, VoidType):
            if s.value is not None:
                self.fail(s.value.span, "type", f"`{fn.name}` returns nothing (-> None)")
            value = None
        else:
            if s.value is None:
                self.fail(s.span, "type", f"`{fn.name}` must return a {fn.returns}")
            v = self.value(s.value, fn.returns)
            value = self.coerce(v, fn.returns, s.value.span, "the returned value")
            if self.fn.checker.returns_action(fn):
                self.check_action(value)
        self.flow = self.flow.dead()
        return tir.Return(value, s.span)

    def check_action(self, value: tir.Expr) -> None:
        """A hook (or a function declared `-> int`) returns an XDP action: every constant
        `value` can be is one, whether written here, in a branch of `x if c else y`, as the
        least value of a `max`, or returned by a function it calls."""
        assert self.fn is not None
        fn = self.fn.function
        actions = "XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX or XDP_REDIRECT"
        hint = (f"return {actions}" if fn.hook is not None else
                f"`{fn.name}` is declared `-> int`: like a hook, it returns an XDP action "
                f"({actions}); declare it `-> u32` if it returns a plain number")
        for kind, v, span, call in self.action_constants(value, set(), None):
            if v <= 4 and (kind == "least" or v >= 0):
                continue
            if call is not None:
                callee = call.func.name
                at = f"line {span.line}" if span.file == call.span.file else str(span)
                what = f"{v}" if kind == "is" else f"{v} or more"
                self.sink.error(call.span, "hook-return",
                                f"`{callee}` can return {what} ({at}), which is not an XDP action",
                                f"make `{callee}` return {actions}, and declare it `-> int` "
                                "so that its returns are checked where they are written")
            elif kind == "is":
                self.sink.error(span, "hook-return", f"{v} is not an XDP action", hint)
            else:
                self.sink.error(span, "hook-return",
                                f"this `max` is at least {v}, which is not an XDP action", hint)

    def action_constants(self, e: tir.Expr, seen: set[tir.Function], call: tir.Call | None
                         ) -> Iterator[tuple[str, int, Span, tir.Call | None]]:
        """The constants `e` can be, as (kind, value, where, the call of this function it comes
        through): kind "is" for a value, "least" for a floor (`max(x, 7)` is at least 7)."""
        assert self.fn is not None
        if isinstance(e, tir.Const):
            yield "is", e.value, e.span, call
        elif isinstance(e, tir.Cond):
            yield from self.action_constants(e.body, seen, call)
            yield from self.action_constants(e.orelse, seen, call)
        elif isinstance(e, tir.Convert) and isinstance(e.type, IntType):
            source = e.operand.type
            widening = isinstance(source, IntType) and source.bits <= e.type.bits
            for kind, v, span, via in self.action_constants(e.operand, seen, call):
                if kind == "is" or (widening and v >= 0):  # a floor survives no wrap-around
                    yield kind, e.type.wrap(v), span, via
        elif isinstance(e, tir.MinMax) and e.op == "max":
            floors = [a.value for a in e.args if isinstance(a, tir.Const)]
            if floors:
                yield "least", max(floors), e.span, call
        elif isinstance(e, tir.Call) and e.func not in seen \
                and not self.fn.checker.returns_action(e.func):
            seen.add(e.func)  # (a function declared `-> int` checks its own returns)
            for ret in _returns(e.func.body):
                if ret.value is not None:
                    yield from self.action_constants(ret.value, seen, call or e)

    # ---------------------------------------------------------------- control flow
    def s_If(self, s: ast.If) -> tir.Stmt | None:
        try:
            test, ft, ff = self.condition(s.test)
        except CheckFailed:
            # Still check both branches, so their errors are reported too.
            start = self.flow
            self.block(s.body)
            self.flow = start
            self.block(s.orelse)
            self.flow = start
            raise
        self.flow = ft
        body = self.block(s.body)
        after_body = self.flow
        self.flow = ff
        orelse = self.block(s.orelse)
        self.flow = join(after_body, self.flow)
        return tir.If(test, body, orelse, s.span)

    def s_For(self, s: ast.For) -> tir.Stmt:
        assert self.fn is not None
        # The bound is evaluated once, before the first iteration, as in Python.
        start, stop, step, bound, t = self.range_bounds(s.iter)
        name = s.target.id
        var = self.fn.locals.get(name)
        if var is None:
            if self.module.lookup(name) is not None:
                self.fail(s.target.span, "name", f"`{name}` is a module-level name")
            var = tir.Var(name, t, s.target.span)
            self.fn.locals[name] = var
            self.fn.function.locals.append(var)
        elif var.type != t:
            self.fail(s.target.span, "type", f"`{name}` is a {var.type}; the loop counts in {t}")
        before = self.flow
        # Find the facts that hold at the top of every iteration: iterate to a fixpoint
        # with diagnostics muted, then check the body once more for real.
        head = before
        for _ in range(8):
            with self.speculative():
                end, frame = self.loop_body(s, var, head)
            nxt = join_all([before, end] + frame.continues)
            nxt = nxt.without(var)
            if nxt == head:
                break
            head = nxt
        self.flow = head
        end, frame = self.loop_body(s, var, head, collect=True)
        self.flow = join_all([head] + frame.breaks).without(var)
        return tir.Loop(var, start, stop, step, bound, frame.body, s.span)

    def loop_body(self, s: ast.For, var: tir.Var, head: Flow, collect: bool = False
                  ) -> tuple[Flow, LoopFrame]:
        assert self.fn is not None
        frame = LoopFrame(self.fn.lock_depth)
        self.fn.loops.append(frame)
        self.flow = head.assign(var)
        try:
            body = self.block(s.body)
        finally:
            self.fn.loops.pop()
        frame.body = body
        return self.flow, frame

    def range_bounds(self, it: ast.Expr) -> tuple[tir.Const, tir.Expr, int, int, IntType]:
        """`range(stop)`, `range(start, stop)`, `range(start, stop, step)` with a visible bound."""
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range"
                and not it.keywords and 1 <= len(it.args) <= 3):
            self.fail(it.span, "loop-bound", "a `for` loop runs over `range(...)` only",
                      "write `for i in range(N):` with N a constant")
        args = list(it.args)
        start_node = args[0] if len(args) >= 2 else None
        stop_node = args[1] if len(args) >= 2 else args[0]
        step = 1
        if len(args) == 3:
            step_c = self.constant(args[2])
            step = step_c.value
            if step == 0:
                self.fail(args[2].span, "loop-bound", "the step of `range` cannot be 0")
        start: tir.Const = tir.Const(0, UNTYPED, it.span)
        if start_node is not None:
            first = self.value(start_node)
            if not isinstance(first, tir.Const):
                src = self.module.source
                start_text = _text(src, start_node.span)
                stop_text = _text(src, stop_node.span)
                self.fail(start_node.span, "loop-bound", "the start of `range` must be a constant",
                          "the verifier must see the bound: count from a constant, e.g. "
                          f"`for i in range({stop_text}):` with `if i < {start_text}: continue`")
            start = first
        stop = self.value(stop_node)
        limit = self.stop_limit(stop, stop_node, step)
        # The counter's type: the typed bound's, else u32 (i32 when a constant is negative).
        t: IntType | None = None
        for v in (start, stop):
            if isinstance(v.type, IntType):
                t = v.type if t is None else (common_int(t, v.type) or t)
        if t is None:
            t = I32 if min(start.value, limit) < 0 else U32
        first = self.coerce(start, t, it.span, "the start")
        stop = self.coerce(stop, t, stop_node.span, "the stop")
        assert isinstance(first, tir.Const)
        start = first
        if step > 0:
            bound = max(0, -(-(limit - start.value) // step))
        else:
            bound = max(0, -(-(start.value - limit) // -step))
        return start, stop, step, bound, t

    def stop_limit(self, stop: tir.Expr, node: ast.Expr, step: int) -> int:
        """The compile-time limit of a loop's stop value, or a loop-bound error."""
        if isinstance(stop, tir.Const):
            return stop.value
        if isinstance(stop, tir.MinMax) and (stop.op == "min") == (step > 0):
            consts = [a.value for a in stop.args if isinstance(a, tir.Const)]
            if consts:
                return min(consts) if step > 0 else max(consts)
        self.fail(node.span, "loop-bound", "the loop bound is not known at compile time",
                  "the verifier must see a bound: write `range(min(n, MAX))` with MAX a constant")

    def s_With(self, s: ast.With) -> tir.Stmt:
        assert self.fn is not None
        ctx = self.resolve(s.context)
        if not isinstance(ctx, tuple) or not isinstance(ctx[1].type, SpinLockType):
            self.fail(s.context.span, "lock", "`with` takes a SpinLock field",
                      "write `with v.lock:` where `lock: SpinLock` is a field of a map value")
        place = ctx[1].place
        if self.fn.lock is not None:
            self.fail(s.span, "lock-nested", f"`{self.fn.lock_name}` is already held; the "
                      "verifier allows one spin lock at a time", "release it before taking another")
        self.fn.lock = place
        self.fn.lock_name = _text(self.module.source, s.context.span) or "the lock"
        self.fn.function.effects.append(("lock", self.fn.lock_name, s.context.span))
        self.fn.lock_depth += 1
        try:
            body = self.block(s.body)
        finally:
            self.fn.lock = None
            self.fn.lock_depth -= 1
        return tir.Locked(place, body, s.span)


def _returns(body: tuple[tir.Stmt, ...]) -> Iterator[tir.Return]:
    """The `return` statements of a function body."""
    for s in body:
        if isinstance(s, tir.Return):
            yield s
        elif isinstance(s, tir.If):
            yield from _returns(s.body)
            yield from _returns(s.orelse)
        elif isinstance(s, (tir.Loop, tir.Locked)):
            yield from _returns(s.body)


def _text(source: Source, span: Span) -> str:
    """The source text under a one-line span."""
    line = source.line(span.line)
    if span.end_line != span.line:
        return line[span.col - 1:].strip()
    return line[span.col - 1:span.end_col - 1]

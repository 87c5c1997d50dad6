"""Structural checks of a typed program: what the checker promises the stages after it.

The interpreter, the budget and the lowering trust the typed program: every
variable they meet was declared in its function, every operator's operands
already have the operator's type, every `break` sits in a loop, every callee
was checked before its caller. A checker bug that broke one of these would
surface later as a crash, or as a kernel/interpreter mismatch far from its
cause; `validate` finds it at the checker's door. The tests run it on every
example, corpus program, kept regression and generated program (mypyc's
`ircheck` is the model); the compile path does not.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from etran.ir import tir
from etran.ir.types import BOOL, ArrayType, IntType, OptionalType, StructType, Type, VoidType

_SHIFTS = ("<<", ">>")


@dataclass
class _FunctionCheck:
    program: tir.Program
    fn: tir.Function
    checked: set[tir.Function]
    problems: list[str] = field(default_factory=list)
    loops: int = 0
    locks: int = 0

    def problem(self, node: object, message: str) -> None:
        span = getattr(node, "span", None)
        where = f"{span.file}:{span.line}" if span is not None else "?"
        self.problems.append(f"{self.fn.name} ({where}): {message}: {type(node).__name__}")

    def same(self, node: object, a: Type, b: Type, what: str) -> None:
        if a != b and a is not b:
            self.problem(node, f"{what}: {a} is not {b}")

    # ---------------------------------------------------------------- statements
    def block(self, body: tuple[tir.Stmt, ...]) -> None:
        for s in body:
            self.stmt(s)

    def stmt(self, s: tir.Stmt) -> None:
        if s.span is None:
            self.problem(s, "no source span")
        if isinstance(s, tir.Assign):
            self.var(s, s.var)
            self.expr(s.value)
            self.assignable(s, s.var.type, s.value.type)
        elif isinstance(s, tir.Store):
            self.place(s.place)
            self.expr(s.value)
            if s.op is not None and s.op not in ("+", "-", "*", "//", "%", "&", "|", "^",
                                                 "<<", ">>"):
                self.problem(s, f"unknown compound operator {s.op}")
        elif isinstance(s, tir.CopyStruct):
            self.place(s.place)
            self.expr(s.value)
            if not isinstance(s.place.type, (StructType, ArrayType)):
                self.problem(s, f"copies a {s.place.type}, not a struct or array")
        elif isinstance(s, tir.ExprStmt):
            self.expr(s.value)
        elif isinstance(s, tir.If):
            self.boolean(s.test)
            self.block(s.body)
            self.block(s.orelse)
        elif isinstance(s, tir.Loop):
            self.var(s, s.var)
            if not isinstance(s.var.type, IntType):
                self.problem(s, f"loop variable of type {s.var.type}")
            if s.step == 0 or s.bound < 0:
                self.problem(s, f"step {s.step}, bound {s.bound}")
            if not isinstance(s.start, tir.Const):
                self.problem(s, "the start of a range is not a constant")
            self.expr(s.start)
            self.expr(s.stop)
            self.loops += 1
            self.block(s.body)
            self.loops -= 1
        elif isinstance(s, (tir.Break, tir.Continue)):
            if self.loops == 0:
                self.problem(s, "outside a loop")
        elif isinstance(s, tir.Return):
            if self.locks:
                self.problem(s, "inside a locked block")
            if s.value is None:
                if not isinstance(self.fn.returns, VoidType) and self.fn.hook is None:
                    self.problem(s, f"no value, but the function returns {self.fn.returns}")
            else:
                self.expr(s.value)
                self.assignable(s, self.fn.returns, s.value.type)
        elif isinstance(s, tir.Locked):
            if self.locks:
                self.problem(s, "a lock taken inside a locked block")
            self.place(s.lock)
            loops, self.loops = self.loops, 0   # break/continue may not leave the block
            self.locks += 1
            self.block(s.body)
            self.locks -= 1
            self.loops = loops
        else:
            self.problem(s, "not a statement")

    # ---------------------------------------------------------------- expressions
    def expr(self, e: tir.Expr) -> None:
        if e.span is None:
            self.problem(e, "no source span")
        if isinstance(e, tir.Const):
            if isinstance(e.type, IntType) and not e.type.min <= e.value <= e.type.max:
                self.problem(e, f"{e.value} does not fit {e.type}")
        elif isinstance(e, tir.VarRef):
            self.var(e, e.var)
            if e.type != e.var.type and not (isinstance(e.var.type, OptionalType)
                                             and e.type is e.var.type.inner):
                self.problem(e, f"reads `{e.var.name}` ({e.var.type}) as {e.type}")
        elif isinstance(e, tir.Unary):
            self.expr(e.operand)
            self.same(e, e.operand.type, e.type, "operand")
        elif isinstance(e, tir.Not):
            self.boolean(e.operand)
        elif isinstance(e, tir.Binary):
            self.expr(e.left)
            self.expr(e.right)
            self.same(e, e.left.type, e.type, "left operand")
            if e.op in _SHIFTS:
                if not isinstance(e.right.type, IntType):
                    self.problem(e, f"shift count of type {e.right.type}")
            else:
                self.same(e, e.right.type, e.type, "right operand")
        elif isinstance(e, tir.Compare):
            self.expr(e.left)
            self.expr(e.right)
            self.same(e, e.left.type, e.right.type, "compared operands")
        elif isinstance(e, tir.Logic):
            self.boolean(e.left)
            self.boolean(e.right)
        elif isinstance(e, tir.Cond):
            self.boolean(e.test)
            self.expr(e.body)
            self.expr(e.orelse)
            self.assignable(e, e.type, e.body.type)
            self.assignable(e, e.type, e.orelse.type)
        elif isinstance(e, tir.Convert):
            self.expr(e.operand)
        elif isinstance(e, (tir.Load, tir.AddrOf)):
            self.place(e.place)
        elif isinstance(e, tir.IsNone):
            self.expr(e.operand)
            # a reference already known not to be None has its inner type (the test folds)
            if not isinstance(e.operand.type, (OptionalType, StructType)):
                self.problem(e, f"tests a {e.operand.type} for None")
        elif isinstance(e, tir.NewStruct):
            for f, v in e.inits:
                if e.struct.field(f.name) is not f:
                    self.problem(e, f"`{f.name}` is not a field of {e.struct}")
                self.expr(v)
        elif isinstance(e, tir.Call):
            if e.func not in self.checked:
                self.problem(e, f"calls `{e.func.name}` before it was checked")
            if len(e.args) != len(e.func.params):
                self.problem(e, f"{len(e.args)} arguments for {len(e.func.params)} parameters")
            for a in e.args:
                self.expr(a)
            self.same(e, e.type, e.func.returns, "result")
        elif isinstance(e, (tir.Builtin, tir.MinMax)):
            for a in e.args:
                self.expr(a)
            if isinstance(e, tir.MinMax):
                for a in e.args:
                    self.same(e, a.type, e.type, "argument")
        elif isinstance(e, (tir.MapGet, tir.MapSet, tir.MapDelete, tir.QueuePush, tir.QueuePop,
                            tir.RingOutput, tir.Redirect)):
            if e.map not in self.program.maps:
                self.problem(e, f"map `{e.map.name}` is not one of the program's")
            for sub in ("key", "value", "fallback"):
                child = getattr(e, sub, None)
                if child is not None:
                    self.expr(child)
            if isinstance(e, (tir.MapGet, tir.QueuePop)) and e.type.inner is not e.map.value:
                self.problem(e, f"gives {e.type}, but `{e.map.name}` holds {e.map.value}")
        elif isinstance(e, tir.Atomic):
            self.place(e.place)
            if e.expected is not None:
                self.expr(e.expected)
            self.expr(e.value)
            if e.op not in ("add", "xchg", "cas") or (e.op == "cas") != (e.expected is not None):
                self.problem(e, f"an atomic `{e.op}` with{'' if e.expected else 'out'} an expected value")
        elif isinstance(e, (tir.TimerStart, tir.TimerCancel)):
            self.place(e.timer)
            if isinstance(e, tir.TimerStart):
                self.expr(e.delay)
        elif isinstance(e, tir.PacketHeader):
            self.expr(e.offset)
            if e.type.inner is not e.header:
                self.problem(e, f"a view of {e.header} typed {e.type}")
        elif isinstance(e, tir.PacketResize):
            self.expr(e.delta)
        elif isinstance(e, tir.PacketChecksum):
            self.expr(e.offset)
            self.expr(e.length)
            self.expr(e.seed)
        else:
            self.problem(e, "not an expression")
        if e.type is None:
            self.problem(e, "no type")

    def place(self, p: tir.Place) -> None:
        self.expr(p.base)
        if isinstance(p, tir.IndexPlace):
            self.expr(p.index)
            if not isinstance(p.index.type, IntType):
                self.problem(p, f"index of type {p.index.type}")
            if p.length <= 0:
                self.problem(p, f"array of length {p.length}")

    # ---------------------------------------------------------------- helpers
    def var(self, node: object, v: tir.Var) -> None:
        if v not in self.fn.params and v not in self.fn.locals:
            self.problem(node, f"`{v.name}` is neither a parameter nor a local of the function")

    def boolean(self, e: tir.Expr) -> None:
        self.expr(e)
        if e.type != BOOL:
            self.problem(e, f"a condition of type {e.type}")

    def assignable(self, node: object, target: Type, value: Type) -> None:
        if target == value or target is value:
            return
        if isinstance(target, OptionalType) and value is target.inner:
            return
        self.problem(node, f"a {value} where a {target} is expected")


def validate(program: tir.Program) -> list[str]:
    """Every broken invariant of `program`, one line each; empty when it is well formed."""
    problems: list[str] = []
    checked: set[tir.Function] = set()
    for fn in program.functions:
        check = _FunctionCheck(program, fn, checked)
        check.block(fn.body)
        problems += check.problems
        checked.add(fn)
    for hook in program.hooks:
        if hook not in checked:
            problems.append(f"hook `{hook.name}` is not among the checked functions")
    return problems

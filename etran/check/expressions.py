"""Type-checking expressions: names, fields, operators, conversions and conditions.

Integer typing rules (the language reference has the full story):
* an integer constant is exact until it meets a typed operand, then takes its
  type; a constant that does not fit that type is an error;
* widening is implicit (`u8` to `u32`), narrowing needs a cast (`u16(x)`),
  and mixing signed with unsigned is an error;
* comparisons and `and`/`or`/`not` give `bool`; `bool` is not an integer.
Constant operands are folded here with `etran.ir.semantics`, the same
functions the interpreter uses.
"""
from __future__ import annotations

from typing import NoReturn, TypeGuard

from etran.check.builtins import Builtin
from etran.check.context import CheckFailed, FunctionContext
from etran.check.flow import Flow, join
from etran.check.scope import ConstSym, FuncDecl, ModuleScope, Symbol
from etran.dsl import ast
from etran.dsl.diagnostics import DiagnosticSink, Span
from etran.ir import semantics, tir
from etran.ir.types import (
    BOOL,
    ERROR,
    I64,
    U32,
    U64,
    UNTYPED,
    ArrayType,
    BeType,
    BoolType,
    IntType,
    MapType,
    OptionalType,
    PacketType,
    SpinLockType,
    StructType,
    TimerType,
    Type,
    UntypedInt,
    common_int,
    value_type_of,
)

# A SpinLock or Timer field: ("special", a reference to it); usable only by `with` and timers.
Special = tuple[str, tir.AddrOf]

ARITH_OPS = ("+", "-", "*", "//", "%", "&", "|", "^", "<<", ">>")


class ExprChecker:
    """Checks expressions in a module scope, optionally inside a function body."""

    def __init__(self, module: ModuleScope, sink: DiagnosticSink,
                 fn: FunctionContext | None = None) -> None:
        self.module = module
        self.sink = sink
        self.fn = fn
        self.flow = Flow()

    # ---------------------------------------------------------------- reporting
    def fail(self, span: Span, rule: str, message: str, *hints: str) -> NoReturn:
        self.sink.error(span, rule, message, *hints)
        raise CheckFailed()

    # ---------------------------------------------------------------- names
    def lookup(self, name: str, span: Span) -> tir.Var | Symbol | tir.Const:
        if self.fn is not None and name in self.fn.constants:
            c = self.fn.constants[name]
            return tir.Const(c.value, c.type, span)
        if self.fn is not None and name in self.fn.locals:
            return self.fn.locals[name]
        sym = self.module.lookup(name)
        if sym is not None:
            return sym
        from etran.check.builtins import BUILTINS, PYTHON_BUILTINS, unknown_name_hint
        if name in PYTHON_BUILTINS:
            return BUILTINS[name]
        known = list(self.module.names)
        if self.fn is not None:
            known += [*self.fn.constants, *self.fn.locals]
        self.fail(span, "name", f"name `{name}` is not defined", unknown_name_hint(name, known))

    def resolve(self, e: ast.Expr) -> tir.Expr | Symbol | Special:
        """Like `expr`, but names of types, maps and functions come back as symbols.

        A field of type SpinLock or Timer comes back as ("special", place-reference) so
        `with v.lock:` and `v.timer.start(...)` can use it.
        """
        if isinstance(e, ast.Name):
            found = self.lookup(e.id, e.span)
            if isinstance(found, tir.Const):
                return found
            if isinstance(found, tir.Var):
                return self.var_ref(found, e.span)
            if isinstance(found, ConstSym):
                return tir.Const(found.value, found.type, e.span)
            if isinstance(found, Builtin) and found.kind == "const":
                return tir.Const(found.value, U32, e.span)
            return found
        if isinstance(e, ast.Attribute):
            return self.attribute(e)
        if isinstance(e, ast.Subscript):
            return self.subscript(e)
        return self.expr(e)

    def var_ref(self, var: tir.Var, span: Span) -> tir.Expr:
        if var.type == ERROR:
            raise CheckFailed()  # its definition was already reported
        if var not in self.flow.assigned:
            self.fail(span, "unassigned", f"`{var.name}` may be used before it is assigned",
                      "assign it on every path before this line")
        why = self.flow.stale_reason(var)
        if why is not None and why[0] == "resize":
            self.fail(span, "view-after-resize",
                      f"packet view `{var.name}` was taken before the packet was resized at "
                      f"line {why[2].line}",
                      "a resize moves the packet: take the view again after the resize, "
                      f"e.g. `{var.name} = pkt.header(...)`")
        if why is not None:
            self.fail(span, "map-ref-after-update",
                      f"`{var.name}` refers to an entry of `{why[1]}`, which was updated or had "
                      f"an entry deleted at line {why[2].line}: the kernel may have freed or "
                      "replaced that entry",
                      f"look the entry up again after the change: `{var.name} = {why[1]}.get(key)`")
        t = var.type
        if isinstance(t, OptionalType) and var in self.flow.nonnull:
            t = t.inner
        return tir.VarRef(var, t, span)

    def is_packet_ref(self, ref: tir.Expr) -> bool:
        """Whether `ref` may point into the packet."""
        return self.packet_kind(ref) != "other"

    def packet_kind(self, ref: tir.Expr) -> str:
        """Where the reference `ref` points: "packet" (a packet view), "other" (the stack, a
        map value) or "mixed" (a packet view on some paths only: `view if c else value`)."""
        while True:
            if isinstance(ref, tir.PacketHeader):
                return "packet"
            if isinstance(ref, tir.VarRef):
                if not self.flow.is_view(ref.var):
                    return "other"
                return "mixed" if self.flow.is_mixed(ref.var) else "packet"
            if isinstance(ref, tir.AddrOf):
                ref = ref.place.base
                continue
            if isinstance(ref, tir.Cond):
                kinds = {self.packet_kind(ref.body), self.packet_kind(ref.orelse)}
                return kinds.pop() if len(kinds) == 1 else "mixed"
            return "other"

    def maybe_view(self, ref: tir.Expr) -> bool:
        """Whether `ref` is reached from a struct parameter (or a name bound to one), which
        each call of the function makes a packet view or not."""
        if self.fn is None or not self.fn.maybe_views:
            return False
        todo = [ref]
        while todo:
            r = todo.pop()
            if isinstance(r, tir.AddrOf):
                todo.append(r.place.base)
            elif isinstance(r, tir.Cond):
                todo += [r.body, r.orelse]
            elif isinstance(r, tir.VarRef) and r.var in self.fn.maybe_views:
                return True
        return False

    # ---------------------------------------------------------------- entry points
    def expr(self, e: ast.Expr, expected: Type | None = None) -> tir.Expr:
        """Check `e` as a value; `expected` gives untyped constants their type."""
        method = getattr(self, "e_" + type(e).__name__)
        out: tir.Expr = method(e, expected)
        return out

    def value(self, e: ast.Expr, expected: Type | None = None) -> tir.Expr:
        """An expression used as a value: names of types, maps or functions are errors here."""
        r = self.resolve(e) if isinstance(e, (ast.Name, ast.Attribute)) else self.expr(e, expected)
        if isinstance(r, tuple):
            self.fail(e.span, "type", "a SpinLock or Timer field cannot be used as a value",
                      "take a lock with `with v.lock:`; arm a timer with `v.timer.start(ns)`")
        if not _is_expr(r):
            self.fail(e.span, "type", f"{_describe(r)} is not a value")
        return r

    def e_Name(self, e: ast.Name, expected: Type | None) -> tir.Expr:
        return self.value(e, expected)

    def e_IntLit(self, e: ast.IntLit, expected: Type | None) -> tir.Expr:
        return tir.Const(e.value, UNTYPED, e.span)

    def e_BoolLit(self, e: ast.BoolLit, expected: Type | None) -> tir.Expr:
        return tir.Const(int(e.value), BOOL, e.span)

    def e_NoneLit(self, e: ast.NoneLit, expected: Type | None) -> tir.Expr:
        self.fail(e.span, "type", "`None` is only used in `x is None` tests",
                  "test a lookup result with `if x is None:`")

    def e_StrLit(self, e: ast.StrLit, expected: Type | None) -> tir.Expr:
        self.fail(e.span, "unsupported-syntax", "strings are only allowed as docstrings")

    def e_Attribute(self, e: ast.Attribute, expected: Type | None) -> tir.Expr:
        return self.value(e, expected)

    # ---------------------------------------------------------------- fields
    def attribute(self, e: ast.Attribute) -> tir.Expr | Symbol | Special:
        base = self.resolve(e.value)
        if isinstance(base, StructType):
            if e.attr == "size":
                return tir.Const(base.size, UNTYPED, e.span)
            self.fail(e.span, "name", f"`{base.name}.{e.attr}`: only `{base.name}.size` is "
                      "available on a type", "read fields from a value, e.g. `v." + e.attr + "`")
        if isinstance(base, tuple):
            self.fail(e.span, "type", f"`{e.attr}` is not an attribute of a SpinLock or Timer",
                      "a Timer has `.start(ns)` and `.cancel()`")
        if not _is_expr(base):
            self.fail(e.span, "name", f"{_describe(base)} has no attribute `{e.attr}`")
        assert not isinstance(base, (tuple, Builtin, ConstSym, FuncDecl, MapType, StructType))
        bt = base.type
        if isinstance(bt, PacketType):
            return self.packet_attribute(base, e)
        if isinstance(bt, OptionalType):
            self.none_error(e.value, base)
        if not isinstance(bt, StructType):
            self.fail(e.span, "type", f"a value of type {bt} has no field `{e.attr}`")
        f = bt.field(e.attr)
        if f is None:
            if e.attr in self.module.methods.get(bt, {}):
                self.fail(e.span, "type", f"method `{e.attr}` must be called: `{e.attr}()`")
            names = ", ".join(x.name for x in bt.fields) or "none"
            self.fail(e.span, "name", f"{bt.kind.lower()} `{bt.name}` has no field `{e.attr}`",
                      f"its fields are: {names}")
        place = tir.FieldPlace(base, f, e.span)
        return self.place_value(place, e.span)

    def place_value(self, place: tir.Place, span: Span) -> tir.Expr | Special:
        t = place.type
        if isinstance(t, (SpinLockType, TimerType)):
            return ("special", tir.AddrOf(place, t, span))
        if isinstance(t, (StructType, ArrayType)):
            return tir.AddrOf(place, t, span)
        return tir.Load(place, value_type_of(t), span)  # type: ignore[arg-type]

    def packet_attribute(self, base: tir.Expr, e: ast.Attribute) -> tir.Expr:
        names = {"len": "pkt_len", "rx_queue": "rx_queue", "ifindex": "ifindex"}
        if e.attr in names:
            return tir.Builtin(names[e.attr], (), U32, e.span)
        if e.attr in ("header", "checksum", "resize_head", "resize_tail"):
            self.fail(e.span, "type", f"`pkt.{e.attr}` must be called")
        if e.attr in ("data", "data_end", "bytes", "payload"):
            self.fail(e.span, "packet-access", f"`pkt.{e.attr}`: packet memory is only reached "
                      "through checked header views",
                      "declare a Header and use `h = pkt.header(H, offset)`, then `if h is None:`")
        self.fail(e.span, "name", f"a Packet has no attribute `{e.attr}`",
                  "available: len, rx_queue, ifindex, header(H, offset), "
                  "checksum(offset, length[, seed]), resize_head(n), resize_tail(n)")

    def none_error(self, node: ast.Expr, value: tir.Expr) -> NoReturn:
        name = node.id if isinstance(node, ast.Name) else "this value"
        if isinstance(value, tir.VarRef):
            self.flow = self.flow.narrow(value.var)  # one report per variable, not per use
        self.fail(node.span, "none-check", f"`{name}` may be None here",
                  f"check it first: `if {name} is None: return ...`" if isinstance(node, ast.Name)
                  else "assign it to a name and check `if x is None:` before use")

    def e_Subscript(self, e: ast.Subscript, expected: Type | None) -> tir.Expr:
        r = self.subscript(e)
        if isinstance(r, tuple):
            self.fail(e.span, "type", "a SpinLock or Timer cannot be used as a value")
        return r

    def subscript(self, e: ast.Subscript) -> tir.Expr | Special:
        base = self.resolve(e.value)
        if isinstance(base, MapType):
            self.fail(e.span, "type", f"reading a map with `{base.name}[key]` is not allowed",
                      f"use `{base.name}.get(key)`, which returns None when the key is absent")
        if isinstance(base, Builtin) and base.kind == "array":
            self.fail(e.span, "type", "`Array[T, N]` is a type; use it in a field declaration")
        if not _is_expr(base) or isinstance(base, tuple):
            self.fail(e.span, "type", f"{_describe(base)} cannot be indexed")
        assert _is_expr(base)
        bt = base.type
        if isinstance(bt, PacketType):
            self.fail(e.span, "packet-access", "packet bytes cannot be indexed directly: the "
                      "verifier only allows reads it can prove are inside the packet",
                      "declare a Header and read it through a checked view: "
                      "`h = pkt.header(H, offset)` then `if h is None: ...`")
        if isinstance(bt, OptionalType):
            self.none_error(e.value, base)
        if not isinstance(bt, ArrayType):
            self.fail(e.span, "type", f"a value of type {bt} cannot be indexed",
                      "only Array fields can be indexed")
        if len(e.index) != 1:
            self.fail(e.span, "type", "an array takes one index")
        idx = self.value(e.index[0])
        self.still_valid(base)
        if isinstance(idx, tir.Const):
            if not 0 <= idx.value < bt.length:
                self.fail(e.index[0].span, "bounds",
                          f"index {idx.value} is out of range for {bt}",
                          f"valid indexes are 0 to {bt.length - 1}")
            idx = tir.Const(idx.value, U32, idx.span)
        elif not isinstance(idx.type, IntType):
            self.fail(e.index[0].span, "type", f"an array index must be an integer, not {idx.type}")
        kind = "other" if isinstance(idx, tir.Const) else self.packet_kind(base)
        if not isinstance(idx, tir.Const) and self.maybe_view(base):
            # A struct parameter is a packet view at some calls and a value on the stack or
            # in a map at others: each call uses a copy of the function checked for what it
            # passes (`call_function`), where this index gets the check its memory needs.
            assert self.fn is not None
            self.fn.view_dependent = True
            kind = "other"
        if kind == "mixed":
            root = tir.root_var(base)
            name = f"`{root.name}`" if root is not None else "this value"
            self.fail(e.index[0].span, "packet-access",
                      f"{name} is a packet view on some paths and a value on the stack or in a "
                      "map on others, so an array in it needs a constant index",
                      "a view's element is checked against the packet's end and another "
                      "value's must not be: index it with a constant, or index each where it is "
                      "known (in the branch that chose it)")
        in_packet = kind == "packet"
        if isinstance(bt.elem, (StructType, ArrayType, SpinLockType, TimerType)) \
                and not isinstance(idx, tir.Const):
            self.fail(e.index[0].span, "bounds",
                      f"an array of {bt.elem} must be indexed by a constant",
                      "the element must provably exist; use a constant index")
        place = tir.IndexPlace(base, idx, bt.elem, bt.length, e.span, in_packet)
        return self.place_value(place, e.span)

    def still_valid(self, base: tir.Expr) -> None:
        """Check again the reference `base` is reached from, after a later part of the same
        expression ran: `flow.last[f()]` reads through `flow` after `f` runs, and
        `atomic_add(flow.n, f())` writes through it after, so a map update or a packet
        resize inside `f` leaves that access stale."""
        root = tir.root_var(base)
        if root is not None:
            self.var_ref(root, base.span)

    # ---------------------------------------------------------------- conversions
    def coerce(self, value: tir.Expr, target: Type, span: Span, what: str = "value") -> tir.Expr:
        """Use `value` where `target` is expected: constants take the type, ints widen."""
        t = value.type
        if isinstance(target, BeType):
            target = target.value_type
        if t == target or (isinstance(target, StructType) and t is target):
            return value
        if isinstance(t, UntypedInt):
            assert isinstance(value, tir.Const)
            if isinstance(target, IntType):
                if not target.fits(value.value):
                    self.fail(span, "literal-range",
                              f"{value.value} does not fit in {target} "
                              f"({target.min} to {target.max})",
                              f"write `{target}({value.value})` to wrap it on purpose")
                return tir.Const(value.value, target, value.span)
            if isinstance(target, BoolType):
                self.fail(span, "type", f"an integer is not a bool ({what})",
                          "write `True`/`False`, or compare: `x != 0`")
        if isinstance(t, IntType) and isinstance(target, IntType):
            if t.signed != target.signed:
                self.fail(span, "signedness",
                          f"{what} has type {t} but {target} is expected: signed and unsigned "
                          "do not mix", f"convert explicitly: `{target}(...)`")
            if t.bits > target.bits:
                self.fail(span, "narrowing",
                          f"{what} has type {t}, which does not fit in {target}",
                          f"narrow explicitly (wraps): `{target}(...)`")
            if isinstance(value, tir.Const):
                return tir.Const(value.value, target, value.span)
            return tir.Convert(value, target, span)
        if isinstance(t, OptionalType) and t.inner is target:
            self.fail(span, "none-check", f"{what} may be None here",
                      "check it with `if x is None:` first")
        if isinstance(t, BoolType) and isinstance(target, IntType):
            self.fail(span, "type", f"{what} is a bool, not {target}",
                      f"convert explicitly: `{target}(b)` gives 0 or 1")
        if isinstance(t, IntType) and isinstance(target, BoolType):
            self.fail(span, "type", f"{what} is {t}, not a bool", "compare it: `x != 0`")
        self.fail(span, "type", f"{what} has type {t}, but {target} is expected")

    def cast(self, value: tir.Expr, target: IntType | BoolType, span: Span) -> tir.Expr:
        """An explicit conversion `u16(x)` / `bool(x)`: wraps, extends or tests."""
        t = value.type
        if isinstance(target, BoolType):
            return self.to_bool(value, span)
        if isinstance(t, UntypedInt) or (isinstance(value, tir.Const) and isinstance(t, IntType)):
            assert isinstance(value, tir.Const)
            return tir.Const(target.wrap(value.value), target, span)
        if isinstance(value, tir.Const) and isinstance(t, BoolType):
            return tir.Const(value.value, target, span)
        if isinstance(t, (IntType, BoolType)):
            return value if t == target else tir.Convert(value, target, span)
        self.fail(span, "type", f"cannot convert {t} to {target}")

    def to_bool(self, value: tir.Expr, span: Span) -> tir.Expr:
        t = value.type
        if isinstance(t, BoolType):
            return value
        if isinstance(value, tir.Const):
            return tir.Const(int(value.value != 0), BOOL, span)
        if isinstance(t, IntType):
            return tir.Compare("!=", value, tir.Const(0, t, span), span)
        if isinstance(t, (OptionalType, StructType)):
            return tir.IsNone(value, True, span)
        self.fail(span, "type", f"a value of type {t} cannot be used as a condition")

    def unify(self, a: tir.Expr, b: tir.Expr, span: Span, what: str) -> tuple[tir.Expr, tir.Expr, Type]:
        """Bring two integer operands to their common type."""
        ta, tb = a.type, b.type
        if isinstance(ta, UntypedInt) and isinstance(tb, UntypedInt):
            return a, b, UNTYPED
        if isinstance(ta, UntypedInt):
            b2 = b
            a = self.coerce(a, tb, a.span, "the constant")
            return a, b2, tb
        if isinstance(tb, UntypedInt):
            b = self.coerce(b, ta, b.span, "the constant")
            return a, b, ta
        if isinstance(ta, IntType) and isinstance(tb, IntType):
            common = common_int(ta, tb)
            if common is None:
                s, u = (ta, tb) if ta.signed else (tb, ta)
                self.fail(span, "signedness", f"{what} mixes signed {s} and unsigned {u}",
                          f"convert one side explicitly, e.g. `{s}(x)` or `{u}(x)`")
            return (self.coerce(a, common, a.span), self.coerce(b, common, b.span), common)
        if isinstance(ta, BoolType) and isinstance(tb, BoolType):
            return a, b, BOOL
        bad = ta if not isinstance(ta, IntType) else tb
        self.fail(span, "type", f"{what} needs integers, not {bad}",
                  "convert a bool with `u8(b)`" if isinstance(bad, BoolType) else "")

    # ---------------------------------------------------------------- operators
    def e_BinOp(self, e: ast.BinOp, expected: Type | None) -> tir.Expr:
        if e.op == "/":
            self.fail(e.span, "type", "`/` is true division, which gives a float",
                      "use integer division `//`")
        if e.op == "**":
            return self.power(e)
        if e.op in ("<<", ">>"):
            return self.shift(e, expected)
        left = self.value(e.left, expected)
        right = self.value(e.right, expected)
        if isinstance(left.type, UntypedInt) and isinstance(right.type, UntypedInt):
            assert isinstance(left, tir.Const) and isinstance(right, tir.Const)
            v = semantics.exact_binary(e.op, left.value, right.value)
            if v is None:
                self.fail(e.span, "constant", f"constant `{e.op}` by zero")
            return tir.Const(v, UNTYPED, e.span)
        left, right, t = self.unify(left, right, e.span, f"`{e.op}`")
        if not isinstance(t, IntType):
            self.fail(e.span, "type", f"`{e.op}` needs integers, not {t}")
        if isinstance(left, tir.Const) and isinstance(right, tir.Const):
            return tir.Const(semantics.binary(e.op, left.value, right.value, t), t, e.span)
        return tir.Binary(e.op, left, right, t, e.span)

    def power(self, e: ast.BinOp) -> tir.Expr:
        left = self.value(e.left)
        right = self.value(e.right)
        if isinstance(left, tir.Const) and isinstance(right, tir.Const) \
                and isinstance(left.type, UntypedInt) and isinstance(right.type, UntypedInt):
            v = semantics.exact_binary("**", left.value, right.value)
            if v is not None:
                return tir.Const(v, UNTYPED, e.span)
        self.fail(e.span, "type", "`**` is only allowed between constants",
                  "use a shift (`1 << n`) or multiplication")

    def shift(self, e: ast.BinOp, expected: Type | None) -> tir.Expr:
        left = self.value(e.left, expected)
        count = self.value(e.right)
        if isinstance(count.type, UntypedInt):
            assert isinstance(count, tir.Const)
            if count.value < 0:
                self.fail(e.right.span, "constant", "negative shift count")
            if isinstance(left.type, UntypedInt):
                assert isinstance(left, tir.Const)
                v = semantics.exact_binary(e.op, left.value, count.value)
                if v is None:
                    self.fail(e.span, "constant", "shift count too large for a constant")
                return tir.Const(v, UNTYPED, e.span)
            count = tir.Const(count.value if count.value < 1 << 64 else (1 << 64) - 1, U64, count.span)
        elif not isinstance(count.type, IntType):
            self.fail(e.right.span, "type", f"a shift count must be an integer, not {count.type}")
        if isinstance(left.type, UntypedInt):
            t = expected if isinstance(expected, IntType) else U64
            left = self.coerce(left, t, e.left.span, "the constant")
        lt = left.type
        if not isinstance(lt, IntType):
            self.fail(e.left.span, "type", f"only integers can be shifted, not {lt}")
        if isinstance(left, tir.Const) and isinstance(count, tir.Const):
            ct = count.type
            assert isinstance(ct, IntType)
            return tir.Const(semantics.binary(e.op, left.value, count.value, lt, ct.bits), lt, e.span)
        return tir.Binary(e.op, left, count, lt, e.span)

    def e_UnaryOp(self, e: ast.UnaryOp, expected: Type | None) -> tir.Expr:
        if e.op == "not":
            test, ft, ff = self.condition(e.operand)
            self.flow = join(ft, ff)  # a value, not a branch: nothing is narrowed after it
            if isinstance(test, tir.Const):
                return tir.Const(1 - test.value, BOOL, e.span)
            return tir.Not(test, e.span)
        v = self.value(e.operand, expected)
        if isinstance(v.type, UntypedInt):
            assert isinstance(v, tir.Const)
            return tir.Const({"-": -v.value, "+": v.value, "~": ~v.value}[e.op], UNTYPED, e.span)
        t = v.type
        if not isinstance(t, IntType):
            self.fail(e.span, "type", f"`{e.op}` needs an integer, not {t}")
        if e.op == "+":
            return v
        if isinstance(v, tir.Const):
            return tir.Const(semantics.unary(e.op, v.value, t), t, e.span)
        return tir.Unary(e.op, v, t, e.span)

    def e_BoolOp(self, e: ast.BoolOp, expected: Type | None) -> tir.Expr:
        test, ft, ff = self.condition(e)
        self.flow = join(ft, ff)
        return test

    def e_Compare(self, e: ast.Compare, expected: Type | None) -> tir.Expr:
        test, ft, ff = self.condition(e)
        self.flow = join(ft, ff)
        return test

    def e_IfExp(self, e: ast.IfExp, expected: Type | None) -> tir.Expr:
        test, ft, ff = self.condition(e.test)
        self.flow = ft
        body = self.value(e.body, expected)
        fb = self.flow
        self.flow = ff
        orelse = self.value(e.orelse, expected)
        self.flow = join(fb, self.flow)
        if isinstance(body.type, StructType) and body.type is orelse.type:
            t: Type = body.type
        else:
            body, orelse, t = self.unify(body, orelse, e.span, "the two branches of `if`/`else`")
        if isinstance(test, tir.Const):
            return body if test.value else orelse
        if isinstance(t, UntypedInt):
            # Two constants: the expression is not constant, so it needs a type now.
            assert isinstance(body, tir.Const) and isinstance(orelse, tir.Const)
            t = expected if isinstance(expected, IntType) else (
                I64 if min(body.value, orelse.value) < 0 else U64)
            body = self.coerce(body, t, e.body.span, "the value")
            orelse = self.coerce(orelse, t, e.orelse.span, "the value")
        return tir.Cond(test, body, orelse, t, e.span)

    # ---------------------------------------------------------------- conditions
    def condition(self, e: ast.Expr) -> tuple[tir.Expr, Flow, Flow]:
        """Check `e` as a condition; return it with the flows where it is true and false."""
        if isinstance(e, ast.UnaryOp) and e.op == "not":
            test, ft, ff = self.condition(e.operand)
            out = tir.Const(1 - test.value, BOOL, e.span) if isinstance(test, tir.Const) \
                else tir.Not(test, e.span)
            return out, ff, ft
        if isinstance(e, ast.BoolOp):
            left, lt, lf = self.condition(e.left)
            self.flow = lt if e.op == "and" else lf
            right, rt, rf = self.condition(e.right)
            if e.op == "and":
                out_t, out_f = rt, join(lf, rf)
            else:
                out_t, out_f = join(lt, rt), rf
            if isinstance(left, tir.Const):
                decided = bool(left.value) == (e.op == "or")
                if decided:
                    return left, (lt if e.op == "or" else lf), (lt if e.op == "or" else lf)
                return right, rt, rf
            if isinstance(right, tir.Const) and _pure(left):
                # `x and False`, `x or True`: the result is known, and x does nothing.
                if bool(right.value) == (e.op == "or"):
                    return right, out_t, out_f
                return left, out_t, out_f
            return tir.Logic(e.op, left, right, e.span), out_t, out_f
        if isinstance(e, ast.Compare):
            return self.compare(e)
        value = self.value(e)
        test = self.to_bool(value, e.span)
        if isinstance(test, tir.IsNone) and isinstance(value, tir.VarRef):
            return test, self.flow.narrow(value.var), self.flow
        return test, self.flow, self.flow

    def compare(self, e: ast.Compare) -> tuple[tir.Expr, Flow, Flow]:
        if len(e.ops) > 1:
            self.fail(e.span, "unsupported-syntax", "chained comparisons are not allowed",
                      "write each comparison separately, joined with `and`")
        op = e.ops[0]
        left_node, right_node = e.operands
        if op in ("is", "is not"):
            return self.none_test(e, op == "is not")
        left = self.value(left_node)
        right = self.value(right_node, left.type if isinstance(left.type, IntType) else None)
        if isinstance(left.type, (StructType, OptionalType)) or isinstance(right.type, (StructType, OptionalType)):
            self.fail(e.span, "type", "structs cannot be compared with `" + op + "`",
                      "compare their fields, or test for None with `is None`")
        if isinstance(left.type, BoolType) != isinstance(right.type, BoolType) \
                and not isinstance(left.type, UntypedInt) and not isinstance(right.type, UntypedInt):
            self.fail(e.span, "type", f"cannot compare {left.type} with {right.type}")
        left, right, t = self.unify(left, right, e.span, f"`{op}`")
        if isinstance(t, BoolType) and op not in ("==", "!="):
            self.fail(e.span, "type", f"bools are compared with `==` or `!=`, not `{op}`")
        if isinstance(left, tir.Const) and isinstance(right, tir.Const):
            return tir.Const(int(semantics.compare(op, left.value, right.value)), BOOL, e.span), \
                self.flow, self.flow
        return tir.Compare(op, left, right, e.span), self.flow, self.flow

    def none_test(self, e: ast.Compare, negate: bool) -> tuple[tir.Expr, Flow, Flow]:
        left_node, right_node = e.operands
        if not isinstance(right_node, ast.NoneLit):
            self.fail(e.span, "type", "`is` only tests for None",
                      "use `==` to compare values: `a == b`")
        value = self.value(left_node)
        if not isinstance(value.type, (OptionalType, StructType)):
            self.fail(left_node.span, "type", f"a {value.type} is never None",
                      "only map lookups, packet views and queue pops can be None")
        if isinstance(value.type, StructType):
            # Known not to be None (narrowed before, or never optional): the answer is known.
            known = tir.Const(1 if negate else 0, BOOL, e.span)
            return known, (self.flow if negate else self.flow.dead()), \
                (self.flow.dead() if negate else self.flow)
        test = tir.IsNone(value, negate, e.span)
        when_none, when_value = self.flow, self.flow
        if isinstance(value, tir.VarRef):
            when_value = self.flow.narrow(value.var)
        return (test, when_value, when_none) if negate else (test, when_none, when_value)

    # ---------------------------------------------------------------- constants
    def constant(self, e: ast.Expr, expected: Type | None = None) -> tir.Const:
        v = self.value(e, expected)
        if not isinstance(v, tir.Const):
            self.fail(e.span, "constant", "this must be a compile-time constant",
                      "use literals, module constants and operators on them")
        return v


_PURE = (tir.Const, tir.VarRef, tir.Unary, tir.Not, tir.Binary, tir.Compare, tir.Logic,
         tir.Cond, tir.Convert, tir.IsNone, tir.MinMax)


def _pure(e: object) -> bool:
    """Whether evaluating `e` has no effect but its value (so it may be dropped)."""
    if isinstance(e, (tir.Load, tir.AddrOf)):
        return _pure(e.place.base) and (not isinstance(e.place, tir.IndexPlace)
                                        or _pure(e.place.index))
    if isinstance(e, tir.Builtin):
        return e.name in ("pkt_len", "rx_queue", "ifindex")
    if not isinstance(e, _PURE):
        return False
    return all(_pure(getattr(e, f)) for f in ("operand", "left", "right", "test", "body",
                                              "orelse") if hasattr(e, f)) and \
        all(_pure(a) for a in getattr(e, "args", ()))


def _is_expr(x: object) -> TypeGuard[tir.Expr]:
    return hasattr(x, "type") and hasattr(x, "span") and not isinstance(
        x, (StructType, MapType, Builtin, ConstSym, FuncDecl)) and not isinstance(x, tuple)


def _describe(x: object) -> str:
    if isinstance(x, StructType):
        return f"{x.kind.lower()} type `{x.name}`"
    if isinstance(x, MapType):
        return f"map `{x.name}`"
    if isinstance(x, FuncDecl):
        return f"function `{x.function.name}`"
    if isinstance(x, Builtin):
        return f"`{x.name}`"
    if isinstance(x, ModuleScope):
        return f"module `{x.name}`"
    return "this"

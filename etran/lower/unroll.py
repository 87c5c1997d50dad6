"""Full unrolling of short counted loops that index arrays with their counter.

`for i in range(10): s += words.w[i]` compiled as a loop indexes with a runtime `i`: each
access checks `i` against the array's length and, inside a packet view, checks the
element against `data_end` again, because the verifier forgets a packet pointer's checked
range once a variable is added to it. clang unrolls such a loop and every access becomes a
constant offset from a pointer the verifier already checked: no index test, no reload of
the packet's end, no loop counter. LLVM cannot do it for us here: the lowering hides a
runtime index from it behind a barrier (`FunctionBase.guarded`), so the lowering unrolls
itself, on the typed program, where the counter's value is known.

Each copy of the body sees the counter as a constant (`substitute`). An index or a view
offset that folds to a constant (`fold`, by the language's own integer semantics) becomes a
constant place; one outside the array stays a runtime index, so that it still reads 0 and
ignores writes. The counter's variable is still assigned in each copy: code after the
loop reads its last value, as in Python.

Only loops where this pays and stays small are unrolled (`unrolled_values`): a constant
stop, at most MAX_TRIPS iterations, a body that indexes an array (or places a view) with
the counter, that never assigns the counter and holds no loop itself, and at most
MAX_NODES typed-program nodes in all copies together (a function called counts with its
body: LLVM inlines it into each copy). The verifier walks each copy where it walked the
body once per iteration, so its work stays about the same (less on most programs, 1.16x on
`tcp_rx`: docs/performance.md); the instructions loaded grow by at most the body times the
trips, and mostly shrink, since the copies drop the tests.
"""
from __future__ import annotations

import dataclasses

from etran.ir import semantics, tir
from etran.ir.types import BoolType, IntType

MAX_TRIPS = 16
MAX_NODES = 400


def unrolled_values(loop: tir.Loop) -> list[int] | None:
    """The counter's value in each iteration when `loop` is unrolled, else None."""
    if not isinstance(loop.stop, tir.Const) or not 0 < loop.bound <= MAX_TRIPS:
        return None
    t = loop.var.type
    if not isinstance(t, IntType):
        return None
    nodes = 0
    indexes = False
    stack: list[object] = list(loop.body)
    while stack:
        n = stack.pop()
        nodes += 1
        if isinstance(n, tir.Loop) or (isinstance(n, tir.Assign) and n.var is loop.var):
            return None
        if isinstance(n, tir.Call):
            nodes += _size(n.func.body)      # LLVM inlines it into each copy
        at = n.index if isinstance(n, tir.IndexPlace) else \
            n.offset if isinstance(n, tir.PacketHeader) else None
        if at is not None and _reads(at, loop.var):
            indexes = True
        stack.extend(tir.children(n))
    if not indexes or nodes * loop.bound > MAX_NODES:
        return None
    return [t.wrap(loop.start.value + k * loop.step) for k in range(loop.bound)]


def _size(body: tuple[tir.Stmt, ...]) -> int:
    """Nodes in a function's body and in the bodies of the functions it calls."""
    nodes = 0
    stack: list[object] = list(body)
    while stack:
        n = stack.pop()
        nodes += 1
        if isinstance(n, tir.Call):
            stack.extend(n.func.body)
        stack.extend(tir.children(n))
    return nodes


def _reads(e: object, var: tir.Var) -> bool:
    stack = [e]
    while stack:
        n = stack.pop()
        if isinstance(n, tir.VarRef) and n.var is var:
            return True
        stack.extend(tir.children(n))
    return False


def fold(e: object) -> int | None:
    """The value of an integer expression made of constants, or None. Only what cannot
    fail is folded: operators (with the language's corners: wrap-around, `x // 0`, shift
    counts past the width) and conversions."""
    if isinstance(e, tir.Const):
        return e.value
    if isinstance(e, tir.Binary):
        a, b = fold(e.left), fold(e.right)
        if a is None or b is None:
            return None
        rt = e.right.type
        return semantics.binary(e.op, a, b, e.type, rt.bits if isinstance(rt, IntType) else 64)
    if isinstance(e, tir.Unary):
        a = fold(e.operand)
        return None if a is None else semantics.unary(e.op, a, e.type)
    if isinstance(e, tir.Convert) and isinstance(e.type, (IntType, BoolType)):
        a = fold(e.operand)
        if a is None:
            return None
        return (1 if a else 0) if isinstance(e.type, BoolType) else e.type.wrap(a)
    return None


def substitute(node: object, var: tir.Var, value: int) -> object:
    """`node` with every read of `var` replaced by the constant `value`, and every index
    and view offset that became a constant folded (see the module's docstring)."""
    if isinstance(node, tir.VarRef):
        return tir.Const(value, node.type, node.span) if node.var is var else node
    if isinstance(node, tuple):
        items = [(x[0], substitute(x[1], var, value)) if type(x) is tuple
                 else substitute(x, var, value) for x in node]
        return node if all(a is b for a, b in zip(items, node)) else tuple(items)
    names = tir._child_fields(type(node))
    if not names:
        return node
    changes = {}
    for name in names:
        old = getattr(node, name)
        if old is None:
            continue
        new = substitute(old, var, value)
        if new is not old:
            changes[name] = new
    if isinstance(node, tir.IndexPlace):
        index = changes.get("index", node.index)
        c = fold(index)
        if c is not None and 0 <= c < node.length:
            changes["index"] = tir.Const(c, node.index.type, node.index.span)
        elif isinstance(index, tir.Const):
            # outside the array: a runtime index (the counter's variable holds the value),
            # checked on access like any other; a constant index must be inside
            changes["index"] = node.index
    elif isinstance(node, tir.PacketHeader):
        c = fold(changes.get("offset", node.offset))
        if c is not None and c >= 0:
            changes["offset"] = tir.Const(c, node.offset.type, node.offset.span)
    if not changes or all(changes[k] is getattr(node, k) for k in changes):
        return node
    return dataclasses.replace(node, **changes)  # type: ignore[type-var]

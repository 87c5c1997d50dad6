"""Every pass that dispatches on node types by method name (`e_Call`, `s_For`, `x_Load`)
has a handler for every node type it can meet, and no handler for a type that no longer
exists: a missing one would reach a user as an AttributeError in the middle of a compile."""
from __future__ import annotations

import typing

import pytest

from etran.check.statements import BodyChecker
from etran.dsl import ast
from etran.interp.interpreter import Interpreter
from etran.ir import tir
from etran.lower.statements import FunctionLowering

PASSES = [
    # (pass, handler class, prefix, the union of node types it dispatches on)
    ("checker, expressions", BodyChecker, "e_", ast.Expr),
    ("checker, statements", BodyChecker, "s_", ast.Stmt),
    ("lowering, expressions", FunctionLowering, "x_", tir.Expr),
    ("lowering, statements", FunctionLowering, "s_", tir.Stmt),
    ("interpreter, expressions", Interpreter, "e_", tir.Expr),
    ("interpreter, statements", Interpreter, "s_", tir.Stmt),
]


@pytest.mark.parametrize(("name", "cls", "prefix", "union"), PASSES, ids=[p[0] for p in PASSES])
def test_every_node_type_has_a_handler(name: str, cls: type, prefix: str, union: object) -> None:
    nodes = {t.__name__ for t in typing.get_args(union)}
    handlers = {m[len(prefix):] for m in dir(cls) if m.startswith(prefix)}
    assert not nodes - handlers, f"{name}: no handler for {sorted(nodes - handlers)}"
    assert not handlers - nodes, f"{name}: handlers for unknown nodes {sorted(handlers - nodes)}"


def test_every_node_class_is_in_its_union() -> None:
    """A node class left out of `Expr`/`Stmt` would escape the check above."""
    for module, unions in ((ast, (ast.Expr, ast.Stmt)), (tir, (tir.Expr, tir.Stmt))):
        members = {t for u in unions for t in typing.get_args(u)}
        for name in dir(module):
            obj = getattr(module, name)
            if not isinstance(obj, type) or obj.__module__ != module.__name__:
                continue
            fields = getattr(obj, "__dataclass_fields__", {})
            if "span" in fields and obj not in members:
                assert name in _NOT_NODES, f"{module.__name__}.{name} is in no node union"


_NOT_NODES = {"Keyword", "Param", "FunctionDef", "FieldDecl", "ClassDef", "ImportFrom", "Import",
              "Module", "FieldPlace", "IndexPlace", "Function", "Var"}

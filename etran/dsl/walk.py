"""Generic traversal of the syntax tree: every node reachable from a node, in source order."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from etran.dsl import ast

_EXPR_TYPES = (ast.Name, ast.IntLit, ast.BoolLit, ast.NoneLit, ast.StrLit, ast.Attribute,
               ast.Subscript, ast.Call, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp)


def iter_nodes(node: Any) -> Iterator[Any]:
    """Yield `node` and every dataclass node below it, depth first, in field order."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        children: list[Any] = []
        for f in dataclasses.fields(n):
            if f.name == "span" or f.name.endswith("_span"):
                continue
            v = getattr(n, f.name)
            if dataclasses.is_dataclass(v):
                children.append(v)
            elif isinstance(v, tuple):
                children.extend(x for x in v if dataclasses.is_dataclass(x))
        stack.extend(reversed(children))


def iter_exprs(node: Any) -> Iterator[ast.Expr]:
    for n in iter_nodes(node):
        if isinstance(n, _EXPR_TYPES):
            yield n

"""Module scopes: what each top-level name of a transport module stands for."""
from __future__ import annotations

from dataclasses import dataclass, field

from etran.check.builtins import Builtin
from etran.dsl import ast
from etran.dsl.diagnostics import Source, Span
from etran.ir.tir import Function
from etran.ir.types import MapType, StructType, Type


@dataclass(eq=False, slots=True)
class ConstSym:
    """A module-level constant, folded at compile time."""

    name: str
    value: int
    type: Type           # UNTYPED, an IntType, or BOOL
    span: Span


@dataclass(eq=False, slots=True)
class FuncDecl:
    """A function or method: its syntax, the typed function being built, and where it lives."""

    node: ast.FunctionDef
    function: Function
    module: ModuleScope
    owner: StructType | None = None
    checked: bool = False
    in_progress: bool = False
    # Its calls need a copy checked for their arguments (see `FunctionContext.view_dependent`).
    view_dependent: bool = False


Symbol = ConstSym | StructType | MapType | FuncDecl | Builtin


@dataclass(eq=False, slots=True)
class ModuleScope:
    name: str                      # dotted module name, or the file stem for the main file
    source: Source
    tree: ast.Module
    names: dict[str, Symbol] = field(default_factory=dict)
    # Where each name was bound (for "already defined" messages).
    spans: dict[str, Span] = field(default_factory=dict)
    functions: list[FuncDecl] = field(default_factory=list)
    structs: list[StructType] = field(default_factory=list)
    maps: list[MapType] = field(default_factory=list)
    # Which struct types are the value types of which maps (for timers).
    star_dsl: bool = False
    # Every struct's methods by name; one table shared by the scopes of a compile.
    methods: dict[StructType, dict[str, FuncDecl]] = field(default_factory=dict)

    def lookup(self, name: str) -> Symbol | None:
        return self.names.get(name)

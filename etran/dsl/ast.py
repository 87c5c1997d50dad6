"""The syntax tree of the transport language, as the parser builds it.

Every node is a frozen, slotted dataclass with a `span`. The tree is purely
syntactic: names are unresolved, types are unknown. The checker
(`etran.check.modules`) turns it into the typed program (`etran.ir.tir`).
"""
from __future__ import annotations

from dataclasses import dataclass

from etran.dsl.diagnostics import Span


# ---------------------------------------------------------------- expressions
@dataclass(frozen=True, slots=True)
class Name:
    span: Span
    id: str


@dataclass(frozen=True, slots=True)
class IntLit:
    span: Span
    value: int


@dataclass(frozen=True, slots=True)
class BoolLit:
    span: Span
    value: bool


@dataclass(frozen=True, slots=True)
class NoneLit:
    span: Span


@dataclass(frozen=True, slots=True)
class StrLit:
    """A string; only legal as a docstring (the checker rejects it elsewhere)."""

    span: Span
    value: str


@dataclass(frozen=True, slots=True)
class Attribute:
    span: Span
    value: Expr
    attr: str


@dataclass(frozen=True, slots=True)
class Subscript:
    span: Span
    value: Expr
    index: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Keyword:
    span: Span
    name: str
    value: Expr


@dataclass(frozen=True, slots=True)
class Call:
    span: Span
    func: Expr
    args: tuple[Expr, ...]
    keywords: tuple[Keyword, ...]


@dataclass(frozen=True, slots=True)
class BinOp:
    span: Span
    op: str  # + - * // / % & | ^ << >>
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class UnaryOp:
    span: Span
    op: str  # - ~ + not
    operand: Expr


@dataclass(frozen=True, slots=True)
class BoolOp:
    span: Span
    op: str  # and | or
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Compare:
    """`left op right`; chains (`a < b < c`) keep every link and are rejected by the checker."""

    span: Span
    ops: tuple[str, ...]  # == != < <= > >= is is_not
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class IfExp:
    span: Span
    test: Expr
    body: Expr
    orelse: Expr


Expr = (Name | IntLit | BoolLit | NoneLit | StrLit | Attribute | Subscript | Call | BinOp |
        UnaryOp | BoolOp | Compare | IfExp)


# ---------------------------------------------------------------- statements
@dataclass(frozen=True, slots=True)
class Assign:
    span: Span
    target: Expr
    value: Expr | None  # None for a bare annotation `x: u32`
    annotation: Expr | None


@dataclass(frozen=True, slots=True)
class AugAssign:
    span: Span
    target: Expr
    op: str
    value: Expr


@dataclass(frozen=True, slots=True)
class ExprStmt:
    span: Span
    value: Expr


@dataclass(frozen=True, slots=True)
class If:
    span: Span
    test: Expr
    body: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...]


@dataclass(frozen=True, slots=True)
class For:
    span: Span
    target: Name
    iter: Expr
    body: tuple[Stmt, ...]


@dataclass(frozen=True, slots=True)
class Break:
    span: Span


@dataclass(frozen=True, slots=True)
class Continue:
    span: Span


@dataclass(frozen=True, slots=True)
class Return:
    span: Span
    value: Expr | None


@dataclass(frozen=True, slots=True)
class Pass:
    span: Span


@dataclass(frozen=True, slots=True)
class With:
    span: Span
    context: Expr
    body: tuple[Stmt, ...]


Stmt = Assign | AugAssign | ExprStmt | If | For | Break | Continue | Return | Pass | With


# ---------------------------------------------------------------- declarations
@dataclass(frozen=True, slots=True)
class Param:
    span: Span
    name: str
    annotation: Expr | None


@dataclass(frozen=True, slots=True)
class FunctionDef:
    span: Span
    name: str
    name_span: Span
    params: tuple[Param, ...]
    returns: Expr | None
    body: tuple[Stmt, ...]
    decorators: tuple[Expr, ...]
    docstring: str | None


@dataclass(frozen=True, slots=True)
class FieldDecl:
    span: Span
    name: str
    annotation: Expr


@dataclass(frozen=True, slots=True)
class ClassDef:
    span: Span
    name: str
    name_span: Span
    bases: tuple[Expr, ...]
    fields: tuple[FieldDecl, ...]
    methods: tuple[FunctionDef, ...]
    docstring: str | None
    # Class-level constants (`size = 4`) are not fields; they are rejected with a hint.
    others: tuple[Stmt, ...]


@dataclass(frozen=True, slots=True)
class ImportFrom:
    span: Span
    module: str
    names: tuple[tuple[str, str], ...]  # (name, alias); ("*", "*") for a star import
    name_spans: tuple[Span, ...] = ()   # where each imported name is written


@dataclass(frozen=True, slots=True)
class Import:
    span: Span
    module: str


TopLevel = ImportFrom | Import | ClassDef | FunctionDef | Assign | ExprStmt | Stmt


@dataclass(frozen=True, slots=True)
class Module:
    span: Span
    name: str  # the file name as given
    body: tuple[TopLevel, ...]
    docstring: str | None

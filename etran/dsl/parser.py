"""Parse transport source text into the syntax tree (`etran.dsl.ast`).

The lark grammar (`grammar.lark`) defines the accepted subset of Python. On a
syntax error, `etran.dsl.explain` looks at the same text with Python's own
parser to name the construct that is outside the subset and what to write
instead, so users never see a raw parser-state dump.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedInput, VisitError
from lark.indenter import PythonIndenter
from lark.tree import Meta

from etran.dsl import ast
from etran.dsl.diagnostics import Diagnostic, DiagnosticError, DiagnosticSink, Source, Span

_GRAMMAR = Path(__file__).with_name("grammar.lark")


@functools.cache
def _lark() -> Lark:
    # cache=True stores the LALR tables on disk: building them costs ~100 ms,
    # loading them ~10 ms, and the CLI pays it on every run.
    return Lark(
        _GRAMMAR.read_text(),
        parser="lalr",
        postlex=PythonIndenter(),
        propagate_positions=True,
        maybe_placeholders=True,
        start="start",
        cache=True,
    )


def _span(source: Source, meta: Meta | Token) -> Span:
    if isinstance(meta, Token):
        return Span(source, meta.line or 1, meta.column or 1,
                    meta.end_line or meta.line or 1, meta.end_column or meta.column or 1)
    if getattr(meta, "empty", True):
        return Span(source, 1, 1, 1, 1)
    return Span(source, meta.line, meta.column, meta.end_line, meta.end_column)


def _string_value(tok: Token) -> str:
    text = str(tok)
    i = 0
    while text[i] not in "\"'":
        i += 1
    quote = text[i:i + 3] if text[i:i + 3] in ('"""', "'''") else text[i]
    return text[i + len(quote):len(text) - len(quote)]


class _Builder(Transformer[Token, Any]):
    """Turns lark's parse tree into `etran.dsl.ast` nodes, each with its span."""

    def __init__(self, source: Source, sink: DiagnosticSink) -> None:
        super().__init__(visit_tokens=False)
        self.source = source
        self.sink = sink

    def sp(self, meta: Meta | Token) -> Span:
        return _span(self.source, meta)

    # ---------------------------------------------------------------- atoms
    @v_args(meta=True)
    def name(self, meta: Meta, c: list[Token]) -> ast.Name:
        return ast.Name(self.sp(meta), str(c[0]))

    def _number(self, meta: Meta, tok: Token, base: int) -> ast.IntLit:
        return ast.IntLit(self.sp(meta), int(str(tok).replace("_", ""), base))

    @v_args(meta=True)
    def dec_number(self, meta: Meta, c: list[Token]) -> ast.IntLit:
        return self._number(meta, c[0], 10)

    @v_args(meta=True)
    def hex_number(self, meta: Meta, c: list[Token]) -> ast.IntLit:
        return self._number(meta, c[0], 0)

    bin_number = hex_number
    oct_number = hex_number

    @v_args(meta=True)
    def true(self, meta: Meta, c: list[Any]) -> ast.BoolLit:
        return ast.BoolLit(self.sp(meta), True)

    @v_args(meta=True)
    def false(self, meta: Meta, c: list[Any]) -> ast.BoolLit:
        return ast.BoolLit(self.sp(meta), False)

    @v_args(meta=True)
    def none(self, meta: Meta, c: list[Any]) -> ast.NoneLit:
        return ast.NoneLit(self.sp(meta))

    @v_args(meta=True)
    def string(self, meta: Meta, c: list[Token]) -> ast.StrLit:
        return ast.StrLit(self.sp(meta), "".join(_string_value(t) for t in c))

    # ---------------------------------------------------------------- postfix
    @v_args(meta=True)
    def call(self, meta: Meta, c: list[Any]) -> ast.Call:
        func, arglist = c
        args: list[ast.Expr] = []
        kws: list[ast.Keyword] = []
        for a in arglist or []:
            if isinstance(a, ast.Keyword):
                kws.append(a)
            elif kws:
                self.sink.error(a.span, "syntax", "positional argument after a keyword argument",
                                "put positional arguments first")
            else:
                args.append(a)
        return ast.Call(self.sp(meta), func, tuple(args), tuple(kws))

    def arglist(self, c: list[Any]) -> list[Any]:
        return [a for a in c if a is not None]

    @v_args(meta=True)
    def kwarg(self, meta: Meta, c: list[Any]) -> ast.Keyword:
        return ast.Keyword(self.sp(meta), str(c[0]), c[1])

    @v_args(meta=True)
    def getitem(self, meta: Meta, c: list[Any]) -> ast.Subscript:
        return ast.Subscript(self.sp(meta), c[0], tuple(c[1]))

    def subscript_list(self, c: list[Any]) -> list[Any]:
        return [a for a in c if a is not None]

    @v_args(meta=True)
    def getattr(self, meta: Meta, c: list[Any]) -> ast.Attribute:
        return ast.Attribute(self.sp(meta), c[0], str(c[1]))

    # ---------------------------------------------------------------- operators
    def _bin(op: str) -> Callable[..., ast.BinOp]:  # type: ignore[misc]
        @v_args(meta=True)
        def build(self: _Builder, meta: Meta, c: list[Any]) -> ast.BinOp:
            return ast.BinOp(self.sp(meta), op, c[0], c[1])
        return build

    add = _bin("+")
    sub = _bin("-")
    mul = _bin("*")
    floordiv = _bin("//")
    truediv = _bin("/")
    mod = _bin("%")
    lshift = _bin("<<")
    rshift = _bin(">>")
    bitand = _bin("&")
    bitor = _bin("|")
    bitxor = _bin("^")
    pow = _bin("**")

    def _un(op: str) -> Callable[..., ast.UnaryOp]:  # type: ignore[misc]
        @v_args(meta=True)
        def build(self: _Builder, meta: Meta, c: list[Any]) -> ast.UnaryOp:
            return ast.UnaryOp(self.sp(meta), op, c[0])
        return build

    neg = _un("-")
    pos = _un("+")
    invert = _un("~")
    not_op = _un("not")

    @v_args(meta=True)
    def or_op(self, meta: Meta, c: list[Any]) -> ast.BoolOp:
        return ast.BoolOp(self.sp(meta), "or", c[0], c[1])

    @v_args(meta=True)
    def and_op(self, meta: Meta, c: list[Any]) -> ast.BoolOp:
        return ast.BoolOp(self.sp(meta), "and", c[0], c[1])

    @v_args(meta=True)
    def ifexp(self, meta: Meta, c: list[Any]) -> ast.IfExp:
        return ast.IfExp(self.sp(meta), c[1], c[0], c[2])

    @v_args(meta=True)
    def comparison(self, meta: Meta, c: list[Any]) -> ast.Compare:
        return ast.Compare(self.sp(meta), tuple(c[1::2]), tuple(c[0::2]))

    def eq(self, c: list[Any]) -> str: return "=="
    def ne(self, c: list[Any]) -> str: return "!="
    def lt(self, c: list[Any]) -> str: return "<"
    def le(self, c: list[Any]) -> str: return "<="
    def gt(self, c: list[Any]) -> str: return ">"
    def ge(self, c: list[Any]) -> str: return ">="
    def is_(self, c: list[Any]) -> str: return "is"
    def is_not(self, c: list[Any]) -> str: return "is not"

    # ---------------------------------------------------------------- statements
    @v_args(meta=True)
    def assign(self, meta: Meta, c: list[Any]) -> ast.Assign:
        return ast.Assign(self.sp(meta), c[0], c[1], None)

    @v_args(meta=True)
    def annassign(self, meta: Meta, c: list[Any]) -> ast.Assign:
        return ast.Assign(self.sp(meta), c[0], c[2], c[1])

    @v_args(meta=True)
    def augassign(self, meta: Meta, c: list[Any]) -> ast.AugAssign:
        return ast.AugAssign(self.sp(meta), c[0], str(c[1])[:-1], c[2])

    @v_args(meta=True)
    def expr_stmt(self, meta: Meta, c: list[Any]) -> ast.ExprStmt:
        return ast.ExprStmt(self.sp(meta), c[0])

    @v_args(meta=True)
    def pass_stmt(self, meta: Meta, c: list[Any]) -> ast.Pass:
        return ast.Pass(self.sp(meta))

    @v_args(meta=True)
    def break_stmt(self, meta: Meta, c: list[Any]) -> ast.Break:
        return ast.Break(self.sp(meta))

    @v_args(meta=True)
    def continue_stmt(self, meta: Meta, c: list[Any]) -> ast.Continue:
        return ast.Continue(self.sp(meta))

    @v_args(meta=True)
    def return_stmt(self, meta: Meta, c: list[Any]) -> ast.Return:
        return ast.Return(self.sp(meta), c[0])

    def suite(self, c: list[Any]) -> tuple[Any, ...]:
        return tuple(x for x in c if x is not None)

    class_suite = suite

    @v_args(meta=True)
    def if_stmt(self, meta: Meta, c: list[Any]) -> ast.If:
        test, body, *rest = c
        orelse: tuple[ast.Stmt, ...] = rest[-1] or ()
        # elif chains become nested Ifs in the else branch, innermost last.
        for elif_ in reversed(rest[:-1]):
            orelse = (ast.If(elif_.span, elif_.test, elif_.body, orelse),)
        return ast.If(self.sp(meta), test, self._body(body), self._body(orelse))

    @v_args(meta=True)
    def elif_clause(self, meta: Meta, c: list[Any]) -> ast.If:
        return ast.If(self.sp(meta), c[0], self._body(c[1]), ())

    @v_args(meta=True)
    def for_stmt(self, meta: Meta, c: list[Any]) -> ast.For:
        target = ast.Name(self.sp(c[0]), str(c[0]))
        return ast.For(self.sp(meta), target, c[1], self._body(c[2]))

    @v_args(meta=True)
    def with_stmt(self, meta: Meta, c: list[Any]) -> ast.With:
        return ast.With(self.sp(meta), c[0], self._body(c[1]))

    def _body(self, stmts: tuple[Any, ...]) -> tuple[ast.Stmt, ...]:
        """A statement body: strings are only allowed as docstrings (handled by the caller)."""
        out = []
        for s in stmts:
            if isinstance(s, ast.ExprStmt) and isinstance(s.value, ast.StrLit):
                continue  # a stray string statement is a comment in Python; keep it harmless
            out.append(s)
        return tuple(out)

    # ---------------------------------------------------------------- definitions
    def dotted_name(self, c: list[Token]) -> str:
        return ".".join(str(t) for t in c)

    @v_args(meta=True)
    def import_from(self, meta: Meta, c: list[Any]) -> ast.ImportFrom:
        items = c[1]
        return ast.ImportFrom(self.sp(meta), c[0], tuple((n, a) for n, a, _ in items),
                              tuple(sp for _, _, sp in items))

    @v_args(meta=True)
    def import_star(self, meta: Meta, c: list[Any]) -> list[tuple[str, str, Span]]:
        return [("*", "*", self.sp(meta))]

    def import_list(self, c: list[Any]) -> list[tuple[str, str]]:
        return [x for x in c if x is not None]

    def import_as(self, c: list[Any]) -> tuple[str, str, Span]:
        return (str(c[0]), str(c[1] if c[1] is not None else c[0]), self.sp(c[0]))

    @v_args(meta=True)
    def import_name(self, meta: Meta, c: list[Any]) -> ast.Import:
        return ast.Import(self.sp(meta), c[0])

    @v_args(meta=True)
    def param(self, meta: Meta, c: list[Any]) -> ast.Param:
        return ast.Param(self.sp(meta), str(c[0]), c[1])

    def parameters(self, c: list[Any]) -> list[ast.Param]:
        return [p for p in c if p is not None]

    @staticmethod
    def _docstring(body: tuple[Any, ...]) -> tuple[str | None, tuple[Any, ...]]:
        if body and isinstance(body[0], ast.ExprStmt) and isinstance(body[0].value, ast.StrLit):
            return body[0].value.value, body[1:]
        return None, body

    @v_args(meta=True)
    def funcdef(self, meta: Meta, c: list[Any]) -> ast.FunctionDef:
        name, params, returns, body = c
        doc, body = self._docstring(body)
        return ast.FunctionDef(self.sp(meta), str(name), self.sp(name), tuple(params or ()),
                               returns, self._body(body), (), doc)

    def decorator(self, c: list[Any]) -> Any:
        return c[0]

    @v_args(meta=True)
    def decorated(self, meta: Meta, c: list[Any]) -> ast.FunctionDef:
        *decos, fn = c
        return ast.FunctionDef(fn.span, fn.name, fn.name_span, fn.params, fn.returns, fn.body,
                               tuple(decos), fn.docstring)

    @v_args(meta=True)
    def classdef(self, meta: Meta, c: list[Any]) -> ast.ClassDef:
        name, bases, body = c
        doc, body = self._docstring(body)
        fields: list[ast.FieldDecl] = []
        methods: list[ast.FunctionDef] = []
        others: list[Any] = []
        for s in body:
            if isinstance(s, ast.Assign) and s.value is None and s.annotation is not None \
                    and isinstance(s.target, ast.Name):
                fields.append(ast.FieldDecl(s.span, s.target.id, s.annotation))
            elif isinstance(s, ast.FunctionDef):
                methods.append(s)
            elif isinstance(s, ast.Pass) or (isinstance(s, ast.ExprStmt)
                                              and isinstance(s.value, ast.StrLit)):
                continue
            else:
                others.append(s)
        return ast.ClassDef(self.sp(meta), str(name), self.sp(name), tuple(bases or ()),
                            tuple(fields), tuple(methods), doc, tuple(others))

    @v_args(meta=True)
    def start(self, meta: Meta, c: list[Any]) -> ast.Module:
        body = tuple(x for x in c if x is not None)
        doc, body = self._docstring(body)
        return ast.Module(self.sp(meta), self.source.name, body, doc)


def parse(text: str, filename: str = "<input>") -> ast.Module:
    """Parse `text`; raise DiagnosticError with friendly messages on bad syntax."""
    source = Source(filename, text)
    if not text.endswith("\n"):
        text += "\n"
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as err:
        from etran.dsl.explain import explain_syntax_errors
        raise DiagnosticError(explain_syntax_errors(source, err)) from None
    sink = DiagnosticSink()
    try:
        module: ast.Module = _Builder(source, sink).transform(tree)
    except VisitError as err:  # a bug in the builder, not in the user's program
        raise err.orig_exc from None
    _reject_strings(module, sink)
    sink.raise_if_errors()
    return module


def _reject_strings(module: ast.Module, sink: DiagnosticSink) -> None:
    """Strings are only docstrings: report every other string literal."""
    from etran.dsl.walk import iter_exprs

    for e in iter_exprs(module):
        if isinstance(e, ast.StrLit):
            sink.error(e.span, "unsupported-syntax",
                       "strings are only allowed as docstrings",
                       "the kernel has no strings; use integer constants or a byte Array")


__all__ = ["Diagnostic", "Tree", "parse"]

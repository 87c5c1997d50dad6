"""Parse transport source text into the syntax tree (`etran.dsl.ast`).

The lark grammar (`grammar.lark`) defines the accepted subset of Python. On a
syntax error, `etran.dsl.explain` looks at the same text with Python's own
parser to name the construct that is outside the subset and what to write
instead, so users never see a raw parser-state dump.

Two ways to the same tree. Python's own parser (the `ast` module, in C) reads
the text first and `_FromPython` turns its tree into ours, with the spans the
lark grammar gives (lark's positions: a node starts at its first token and ends
at its last, parentheses of its children included; a statement that ends with
a block, and an import, ends where lark's newline token after its last line
ends, that is at the indentation of the next line of code). It takes only
programs that it can prove the grammar accepts with the same tree, and declines
(returns None) on anything else: a construct outside the subset, a syntax error,
a tab in an indentation, any doubt. Then lark parses the text: it defines the
language and makes every diagnostic, so messages and positions do not depend on
which way a program went. Lark is imported only then; `tests/compiler/
test_parser_fast.py` compares the two trees on every program in the repository,
on generated programs and on mutations of them.
"""
from __future__ import annotations

import ast as pyast
import bisect
import functools
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from etran.dsl import ast
from etran.dsl.diagnostics import Diagnostic, DiagnosticError, DiagnosticSink, Source, Span

if TYPE_CHECKING:
    from lark import Lark, Token
    from lark.tree import Meta

_GRAMMAR = Path(__file__).with_name("grammar.lark")


def __getattr__(name: str) -> Any:
    if name == "Tree":  # re-exported for callers that walk lark's tree; lark loads on demand
        from lark import Tree
        return Tree
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _lark() -> Lark:
    from lark import Lark
    from lark.indenter import PythonIndenter

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


def _string_value(text: str) -> str:
    i = 0
    while text[i] not in "\"'":
        i += 1
    quote = text[i:i + 3] if text[i:i + 3] in ('"""', "'''") else text[i]
    return text[i + len(quote):len(text) - len(quote)]


# ---------------------------------------------------------------- shared by both parsers
def _docstring(body: tuple[Any, ...]) -> tuple[str | None, tuple[Any, ...]]:
    if body and isinstance(body[0], ast.ExprStmt) and isinstance(body[0].value, ast.StrLit):
        return body[0].value.value, body[1:]
    return None, body


def _body(stmts: tuple[Any, ...]) -> tuple[ast.Stmt, ...]:
    """A statement body: strings are only allowed as docstrings (handled by the caller)."""
    out = []
    for s in stmts:
        if isinstance(s, ast.ExprStmt) and isinstance(s.value, ast.StrLit):
            continue  # a stray string statement is a comment in Python; keep it harmless
        out.append(s)
    return tuple(out)


def _funcdef(span: Span, name: str, name_span: Span, params: Sequence[ast.Param],
             returns: ast.Expr | None, body: tuple[Any, ...],
             decorators: tuple[ast.Expr, ...] = ()) -> ast.FunctionDef:
    doc, body = _docstring(body)
    return ast.FunctionDef(span, name, name_span, tuple(params), returns, _body(body), decorators, doc)


def _classdef(span: Span, name: str, name_span: Span, bases: Sequence[Any],
              body: tuple[Any, ...]) -> ast.ClassDef:
    doc, body = _docstring(body)
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
    return ast.ClassDef(span, name, name_span, tuple(bases), tuple(fields), tuple(methods), doc,
                        tuple(others))


def _if_chain(span: Span, test: ast.Expr, body: tuple[Any, ...],
              elifs: Sequence[ast.If], orelse: tuple[Any, ...]) -> ast.If:
    # elif chains become nested Ifs in the else branch, innermost last.
    for elif_ in reversed(elifs):
        orelse = (ast.If(elif_.span, elif_.test, elif_.body, orelse),)
    return ast.If(span, test, _body(body), _body(orelse))


# ---------------------------------------------------------------- lark's tree to ours
def _span(source: Source, meta: Meta | Token) -> Span:
    from lark import Token

    if isinstance(meta, Token):
        return Span(source, meta.line or 1, meta.column or 1,
                    meta.end_line or meta.line or 1, meta.end_column or meta.column or 1)
    if getattr(meta, "empty", True):
        return Span(source, 1, 1, 1, 1)
    return Span(source, meta.line, meta.column, meta.end_line, meta.end_column)


@functools.cache
def _builder() -> Callable[[Source, DiagnosticSink], Any]:
    """The lark Transformer that builds our tree (defined on first use: lark loads then)."""
    from lark import Token, Transformer, v_args

    class Builder(Transformer[Token, Any]):
        """Turns lark's parse tree into `etran.dsl.ast` nodes, each with its span."""

        def __init__(self, source: Source, sink: DiagnosticSink) -> None:
            super().__init__(visit_tokens=False)
            self.source = source
            self.sink = sink

        def sp(self, meta: Meta | Token) -> Span:
            return _span(self.source, meta)

        # ------------------------------------------------------------ atoms
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
            return ast.StrLit(self.sp(meta), "".join(_string_value(str(t)) for t in c))

        # ------------------------------------------------------------ postfix
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

        # ------------------------------------------------------------ operators
        def _bin(op: str) -> Callable[..., ast.BinOp]:  # type: ignore[misc]
            @v_args(meta=True)
            def build(self: Builder, meta: Meta, c: list[Any]) -> ast.BinOp:
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
            def build(self: Builder, meta: Meta, c: list[Any]) -> ast.UnaryOp:
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

        # ------------------------------------------------------------ statements
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
            return _if_chain(self.sp(meta), test, body, rest[:-1], rest[-1] or ())

        @v_args(meta=True)
        def elif_clause(self, meta: Meta, c: list[Any]) -> ast.If:
            return ast.If(self.sp(meta), c[0], _body(c[1]), ())

        @v_args(meta=True)
        def for_stmt(self, meta: Meta, c: list[Any]) -> ast.For:
            target = ast.Name(self.sp(c[0]), str(c[0]))
            return ast.For(self.sp(meta), target, c[1], _body(c[2]))

        @v_args(meta=True)
        def with_stmt(self, meta: Meta, c: list[Any]) -> ast.With:
            return ast.With(self.sp(meta), c[0], _body(c[1]))

        # ------------------------------------------------------------ definitions
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

        @v_args(meta=True)
        def funcdef(self, meta: Meta, c: list[Any]) -> ast.FunctionDef:
            name, params, returns, body = c
            return _funcdef(self.sp(meta), str(name), self.sp(name), params or (), returns, body)

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
            return _classdef(self.sp(meta), str(name), self.sp(name), bases or (), body)

        @v_args(meta=True)
        def start(self, meta: Meta, c: list[Any]) -> ast.Module:
            body = tuple(x for x in c if x is not None)
            doc, body = _docstring(body)
            return ast.Module(self.sp(meta), self.source.name, body, doc)

    return Builder


def _parse_lark(source: Source, text: str) -> ast.Module:
    from lark.exceptions import UnexpectedInput, VisitError

    try:
        tree = _lark().parse(text)
    except UnexpectedInput as err:
        from etran.dsl.explain import explain_syntax_errors
        raise DiagnosticError(explain_syntax_errors(source, err)) from None
    sink = DiagnosticSink()
    try:
        module: ast.Module = _builder()(source, sink).transform(tree)
    except VisitError as err:  # a bug in the builder, not in the user's program
        raise err.orig_exc from None
    _reject_strings(module, sink)
    sink.raise_if_errors()
    return module


# ---------------------------------------------------------------- Python's tree to ours
class _Decline(Exception):
    """The text is outside what `_FromPython` can prove lark reads the same way."""


def _decline() -> NoReturn:
    raise _Decline


# Control characters other than tab and newline (form feed and carriage return among them: the
# two parsers count lines and indentation differently there), and Unicode line separators.
_ODD_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]")
# A tab in an indentation (lark counts it as 8 columns, Python to the next multiple of 8), or a
# line continuation at the start of a line (lark takes the indentation before it, Python after).
_ODD_INDENT = re.compile(r"^ *\t|^[ \t]*\\", re.M)
# After a statement's last token: spaces and line continuations, at most one `;`, then lark's
# _NEWLINE token (`(\r?\n[\t ]*|COMMENT)+`, here without \r), whose end is the group's end.
_GAP = r"(?:[ \t]|\\\n)*"
_LINE_END = re.compile(_GAP + r"(?:;" + _GAP + r")?((?:\n[\t ]*|#[^\n]*)+)")
_LINE_END_NO_SEMI = re.compile(_GAP + r"((?:\n[\t ]*|#[^\n]*)+)")
_SPACE = re.compile(_GAP)
# The grammar's STRING token, without a prefix (a prefixed string goes to lark).
_STRING = re.compile(r"""("""
                     r'''"""(?:[^\\]|\\.)*?"""|'''
                     r"""'''(?:[^\\]|\\.)*?'''|"""
                     r'''"(?:[^"\\\n]|\\.)*"|'''
                     r"""'(?:[^'\\\n]|\\.)*')""", re.S)
_STRING_GAP = re.compile(r"(?:[ \t\n]|\\\n|#[^\n]*)*")
_PAREN_GAP_BEFORE = re.compile(r"[ \t\n(]*")
_PAREN_GAP_AFTER = re.compile(r"[ \t\n)]*:")

_BINOPS: dict[type, str] = {
    pyast.Add: "+", pyast.Sub: "-", pyast.Mult: "*", pyast.FloorDiv: "//", pyast.Div: "/",
    pyast.Mod: "%", pyast.LShift: "<<", pyast.RShift: ">>", pyast.BitAnd: "&",
    pyast.BitOr: "|", pyast.BitXor: "^", pyast.Pow: "**",
}
_AUGOPS = {k: v for k, v in _BINOPS.items() if k is not pyast.Pow}
_UNARYOPS: dict[type, str] = {pyast.USub: "-", pyast.UAdd: "+", pyast.Invert: "~", pyast.Not: "not"}
_CMPOPS: dict[type, str] = {
    pyast.Eq: "==", pyast.NotEq: "!=", pyast.Lt: "<", pyast.LtE: "<=", pyast.Gt: ">",
    pyast.GtE: ">=", pyast.Is: "is", pyast.IsNot: "is not",
}


class _FromPython:
    """Python's syntax tree of a text to ours, with lark's spans; `_Decline` where unsure."""

    def __init__(self, source: Source, text: str) -> None:
        self.source = source
        self.text = text
        starts = [0]
        find = text.find
        i = find("\n")
        while i >= 0:
            starts.append(i + 1)
            i = find("\n", i + 1)
        self.starts = starts
        # Python's columns count UTF-8 bytes, lark's count characters.
        self.lines: list[str] | None = None if text.isascii() else text.split("\n")
        self.strings = 0  # string literals made, to skip the search for stray ones if all are docstrings
        self.docstrings = 0
        self.expr_of: dict[type, Callable[[Any], Any]] = {
            pyast.Name: self.name, pyast.Constant: self.constant, pyast.Attribute: self.attribute,
            pyast.Subscript: self.subscript, pyast.Call: self.call, pyast.BinOp: self.binop,
            pyast.UnaryOp: self.unaryop, pyast.BoolOp: self.boolop, pyast.Compare: self.compare,
            pyast.IfExp: self.ifexp,
        }
        self.stmt_of: dict[type, Callable[[Any], Any]] = {
            pyast.Assign: self.assign, pyast.AnnAssign: self.annassign,
            pyast.AugAssign: self.augassign, pyast.Expr: self.expr_stmt, pyast.Pass: self.simple,
            pyast.Break: self.simple, pyast.Continue: self.simple, pyast.Return: self.return_,
            pyast.If: self.if_, pyast.For: self.for_, pyast.With: self.with_,
        }

    # ------------------------------------------------------------ positions
    def col(self, line: int, byte_col: int) -> int:
        """0-based character column of a 0-based UTF-8 byte column."""
        if self.lines is None:
            return byte_col
        text = self.lines[line - 1]
        if text.isascii():
            return byte_col
        return len(text.encode()[:byte_col].decode())

    def offset(self, line: int, byte_col: int) -> int:
        return self.starts[line - 1] + self.col(line, byte_col)

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1

    def span(self, n: Any) -> Span:
        if self.lines is None:
            return Span(self.source, n.lineno, n.col_offset + 1, n.end_lineno, n.end_col_offset + 1)
        return Span(self.source, n.lineno, self.col(n.lineno, n.col_offset) + 1,
                    n.end_lineno, self.col(n.end_lineno, n.end_col_offset) + 1)

    def start(self, n: Any) -> int:
        return self.offset(n.lineno, n.col_offset)

    def end(self, n: Any) -> int:
        return self.offset(n.end_lineno, n.end_col_offset)

    def between(self, start: int, end: int) -> Span:
        line, col = self.position(start)
        end_line, end_col = self.position(end)
        return Span(self.source, line, col, end_line, end_col)

    def line_end(self, n: Any, semicolon: bool = True) -> int:
        """Where lark's newline token after the line that ends with node `n` ends."""
        m = (_LINE_END if semicolon else _LINE_END_NO_SEMI).match(self.text, self.end(n))
        if m is None:
            _decline()
        return m.end(1)

    def block(self, n: Any, last: Any = None) -> Span:
        """The span of a statement that starts at `n` and ends with the line of `last`."""
        return self.between(self.start(n), self.line_end(n if last is None else last))

    def keyword_then_name(self, n: Any, keyword: str, name: str) -> Span:
        """The span of the name after `keyword` at node `n`'s start (def NAME, class NAME)."""
        at = self.start(n)
        if not self.text.startswith(keyword, at):
            _decline()
        m = _SPACE.match(self.text, at + len(keyword))
        assert m is not None
        if not self.text.startswith(name, m.end()):
            _decline()
        return self.between(m.end(), m.end() + len(name))

    def ascii_name(self, name: str) -> str:
        # Python normalises identifiers (NFKC); lark keeps them as written.
        if not name.isascii():
            _decline()
        return name

    # ------------------------------------------------------------ module level
    def module(self, m: pyast.Module) -> ast.Module:
        body: list[Any] = []
        for s in m.body:
            if isinstance(s, pyast.ImportFrom):
                body.append(self.import_from(s))
            elif isinstance(s, pyast.Import):
                body.append(self.import_(s))
            elif isinstance(s, pyast.ClassDef):
                body.append(self.classdef(s))
            elif isinstance(s, pyast.FunctionDef):
                body.append(self.funcdef(s))
            else:
                body.append(self.stmt(s))
        doc, rest = _docstring(tuple(body))
        if doc is not None:
            self.docstrings += 1
        first = _SPACE.match(self.text)
        assert first is not None
        if first.end() < len(self.text) and self.text[first.end()] == "\\":
            _decline()
        return ast.Module(self.between(first.end(), len(self.text)), self.source.name, rest, doc)

    def line_start(self, s: Any) -> None:
        """An import must start a line: after `x = 1;` Python takes it, the grammar does not."""
        at = self.starts[s.lineno - 1]
        if s.col_offset != 0 or (at >= 2 and self.text[at - 2] == "\\"):
            _decline()

    def import_from(self, s: pyast.ImportFrom) -> ast.ImportFrom:
        self.line_start(s)
        if s.level or s.module is None:
            _decline()
        names: list[tuple[str, str]] = []
        spans: list[Span] = []
        for a in s.names:
            name = self.ascii_name(a.name)
            names.append((name, self.ascii_name(a.asname) if a.asname is not None else name))
            at = self.offset(a.lineno, a.col_offset)
            if not self.text.startswith(name, at):
                _decline()
            spans.append(self.between(at, at + len(name)))
        return ast.ImportFrom(self.between(self.start(s), self.line_end(s, semicolon=False)),
                              self.ascii_name(s.module), tuple(names), tuple(spans))

    def import_(self, s: pyast.Import) -> ast.Import:
        self.line_start(s)
        if len(s.names) != 1 or s.names[0].asname is not None:
            _decline()
        return ast.Import(self.between(self.start(s), self.line_end(s, semicolon=False)),
                          self.ascii_name(s.names[0].name))

    def funcdef(self, s: pyast.FunctionDef) -> ast.FunctionDef:
        a = s.args
        if a.posonlyargs or a.vararg or a.kwonlyargs or a.kwarg or a.defaults:
            _decline()
        params = [ast.Param(self.span(p), self.ascii_name(p.arg),
                            None if p.annotation is None else self.expr(p.annotation))
                  for p in a.args]
        returns = None if s.returns is None else self.expr(s.returns)
        body = self.suite(s.body)
        decorators = tuple(self.expr(d) for d in s.decorator_list)
        fn = _funcdef(self.block(s), self.ascii_name(s.name), self.keyword_then_name(s, "def", s.name),
                      params, returns, body, decorators)
        if fn.docstring is not None:
            self.docstrings += 1
        return fn

    def classdef(self, s: pyast.ClassDef) -> ast.ClassDef:
        if s.decorator_list:
            _decline()
        bases: list[Any] = [self.expr(b) for b in s.bases]
        bases.extend(self.keyword(k) for k in s.keywords)
        body: list[Any] = []
        for x in s.body:
            body.append(self.funcdef(x) if type(x) is pyast.FunctionDef else self.stmt(x))
        cls = _classdef(self.block(s), self.ascii_name(s.name), self.keyword_then_name(s, "class", s.name),
                        bases, tuple(body))
        if cls.docstring is not None:
            self.docstrings += 1
        return cls

    # ------------------------------------------------------------ statements
    def stmt(self, s: Any) -> Any:
        f = self.stmt_of.get(type(s))
        if f is None:
            _decline()
        return f(s)

    def suite(self, stmts: list[Any]) -> tuple[Any, ...]:
        return tuple([self.stmt(s) for s in stmts])

    def assign(self, s: pyast.Assign) -> ast.Assign:
        if len(s.targets) != 1:
            _decline()
        return ast.Assign(self.span(s), self.expr(s.targets[0]), self.expr(s.value), None)

    def annassign(self, s: pyast.AnnAssign) -> ast.Assign:
        return ast.Assign(self.span(s), self.expr(s.target),
                          None if s.value is None else self.expr(s.value), self.expr(s.annotation))

    def augassign(self, s: pyast.AugAssign) -> ast.AugAssign:
        op = _AUGOPS.get(type(s.op))
        if op is None:
            _decline()
        return ast.AugAssign(self.span(s), self.expr(s.target), op, self.expr(s.value))

    def expr_stmt(self, s: pyast.Expr) -> ast.ExprStmt:
        return ast.ExprStmt(self.span(s), self.expr(s.value))

    def simple(self, s: Any) -> Any:
        cls = ast.Pass if type(s) is pyast.Pass else ast.Break if type(s) is pyast.Break else ast.Continue
        return cls(self.span(s))

    def return_(self, s: pyast.Return) -> ast.Return:
        return ast.Return(self.span(s), None if s.value is None else self.expr(s.value))

    def if_(self, s: pyast.If) -> ast.If:
        elifs: list[ast.If] = []
        node = s
        while len(node.orelse) == 1 and type(node.orelse[0]) is pyast.If \
                and self.text.startswith("elif", self.start(node.orelse[0])):
            node = node.orelse[0]
            elifs.append(ast.If(self.block(node, node.body[-1]), self.expr(node.test),
                                _body(self.suite(node.body)), ()))
        orelse = self.suite(node.orelse)
        return _if_chain(self.block(s), self.expr(s.test), self.suite(s.body), elifs, orelse)

    def for_(self, s: pyast.For) -> ast.For:
        target = s.target
        if s.orelse or type(target) is not pyast.Name:
            _decline()
        # `for NAME in`: a bare name (no parentheses), as the grammar has it.
        at = self.start(s)
        gap = _SPACE.match(self.text, at + 3)
        assert gap is not None
        if not self.text.startswith("for", at) or gap.end() != self.start(target):
            _decline()
        return ast.For(self.block(s), self.name(target), self.expr(s.iter), _body(self.suite(s.body)))

    def with_(self, s: pyast.With) -> ast.With:
        if len(s.items) != 1 or s.items[0].optional_vars is not None:
            _decline()
        context = s.items[0].context_expr
        # `with (x):` is `with` and an expression in parentheses for both parsers; `with (x,):`
        # is one item for Python and a syntax error for the grammar.
        at, start = self.start(s), self.start(context)
        before = _PAREN_GAP_BEFORE.match(self.text, at + 4)
        after = _PAREN_GAP_AFTER.match(self.text, self.end(context))
        if before is None or before.end() != start or after is None:
            _decline()
        if self.text.count("(", at + 4, start) != self.text.count(")", self.end(context), after.end()):
            _decline()
        return ast.With(self.block(s), self.expr(context), _body(self.suite(s.body)))

    # ------------------------------------------------------------ expressions
    def expr(self, e: Any) -> Any:
        f = self.expr_of.get(type(e))
        if f is None:
            _decline()
        return f(e)

    def name(self, e: pyast.Name) -> ast.Name:
        return ast.Name(self.span(e), self.ascii_name(e.id))

    def constant(self, e: pyast.Constant) -> Any:
        v = e.value
        if isinstance(v, bool):
            return ast.BoolLit(self.span(e), v)
        if isinstance(v, int):
            return ast.IntLit(self.span(e), v)
        if v is None:
            return ast.NoneLit(self.span(e))
        if not isinstance(v, str) or e.kind is not None:
            _decline()
        return ast.StrLit(self.span(e), self.string(self.start(e), self.end(e)))

    def string(self, start: int, end: int) -> str:
        """The string literals between `start` and `end`, each without its quotes, joined."""
        parts = []
        pos = start
        text = self.text
        while pos < end:
            m = _STRING.match(text, pos)
            if m is None:
                _decline()
            parts.append(_string_value(m.group()))
            if m.end() >= end:
                pos = m.end()
                break
            gap = _STRING_GAP.match(text, m.end())
            assert gap is not None
            pos = gap.end()
        if pos != end:
            _decline()
        self.strings += 1
        return "".join(parts)

    def attribute(self, e: pyast.Attribute) -> ast.Attribute:
        return ast.Attribute(self.span(e), self.expr(e.value), self.ascii_name(e.attr))

    def subscript(self, e: pyast.Subscript) -> ast.Subscript:
        index = e.slice
        if type(index) is pyast.Tuple:
            # `a[x, y]`: the grammar's subscript list; `a[(x, y)]` is a tuple, which it has not.
            if self.text[self.start(index)] == "(":
                _decline()
            items = tuple(self.expr(x) for x in index.elts)
        else:
            items = (self.expr(index),)
        return ast.Subscript(self.span(e), self.expr(e.value), items)

    def keyword(self, k: pyast.keyword) -> ast.Keyword:
        if k.arg is None:
            _decline()
        return ast.Keyword(self.span(k), self.ascii_name(k.arg), self.expr(k.value))

    def call(self, e: pyast.Call) -> ast.Call:
        return ast.Call(self.span(e), self.expr(e.func), tuple(self.expr(a) for a in e.args),
                        tuple(self.keyword(k) for k in e.keywords))

    def binop(self, e: pyast.BinOp) -> ast.BinOp:
        op = _BINOPS.get(type(e.op))
        if op is None:
            _decline()
        return ast.BinOp(self.span(e), op, self.expr(e.left), self.expr(e.right))

    def unaryop(self, e: pyast.UnaryOp) -> ast.UnaryOp:
        return ast.UnaryOp(self.span(e), _UNARYOPS[type(e.op)], self.expr(e.operand))

    def boolop(self, e: pyast.BoolOp) -> ast.BoolOp:
        # Python keeps `a or b or c` as one node; the grammar nests to the left, each inner node
        # ending where its last operand does (with that operand's parentheses).
        op = "and" if type(e.op) is pyast.And else "or"
        values = e.values
        start = self.start(e)
        node = self.expr(values[0])
        for i in range(1, len(values)):
            right = values[i]
            if i == len(values) - 1:
                end = self.end(e)
            else:
                end = self.closing_parens(self.end(right))
            node = ast.BoolOp(self.between(start, end), op, node, self.expr(right))
        return node  # type: ignore[no-any-return]

    def closing_parens(self, pos: int) -> int:
        """After an operand that ends at `pos`: the end of the `)`s that close around it."""
        text = self.text
        end = pos
        while True:
            m = _STRING_GAP.match(text, pos)
            assert m is not None
            pos = m.end()
            if pos < len(text) and text[pos] == ")":
                pos += 1
                end = pos
            else:
                return end

    def compare(self, e: pyast.Compare) -> ast.Compare:
        ops = []
        for op in e.ops:
            o = _CMPOPS.get(type(op))
            if o is None:
                _decline()
            ops.append(o)
        return ast.Compare(self.span(e), tuple(ops),
                           (self.expr(e.left), *(self.expr(c) for c in e.comparators)))

    def ifexp(self, e: pyast.IfExp) -> ast.IfExp:
        return ast.IfExp(self.span(e), self.expr(e.test), self.expr(e.body), self.expr(e.orelse))


def _parse_python(source: Source, text: str) -> ast.Module | None:
    """Our tree of `text` by way of Python's parser, or None where lark must decide."""
    if _ODD_CHARS.search(text) or _ODD_INDENT.search(text):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes in docstrings, `1if`: not ours
            tree = pyast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None
    builder = _FromPython(source, text)
    try:
        module = builder.module(tree)
    except (_Decline, RecursionError):
        return None
    if builder.strings != builder.docstrings:
        sink = DiagnosticSink()
        _reject_strings(module, sink)
        sink.raise_if_errors()
    return module


def parse(text: str, filename: str = "<input>") -> ast.Module:
    """Parse `text`; raise DiagnosticError with friendly messages on bad syntax."""
    source = Source(filename, text)
    if not text.endswith("\n"):
        text += "\n"
    module = _parse_python(source, text)
    if module is None:
        module = _parse_lark(source, text)
    return module


def _reject_strings(module: ast.Module, sink: DiagnosticSink) -> None:
    """Strings are only docstrings: report every other string literal."""
    from etran.dsl.walk import iter_exprs

    for e in iter_exprs(module):
        if isinstance(e, ast.StrLit):
            sink.error(e.span, "unsupported-syntax",
                       "strings are only allowed as docstrings",
                       "the kernel has no strings; use integer constants or a byte Array")


__all__ = ["Diagnostic", "parse"]  # and `Tree`, lark's, loaded on first use

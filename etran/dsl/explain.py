"""Explain a syntax error: which Python construct is outside the language, and what to write.

The lark grammar says *that* a file is outside the accepted subset; this module
says *why*, in the user's terms. It re-reads the text with Python's own parser
(source files are valid Python 3.11, so this almost always succeeds) and looks
for constructs the language leaves out: `while`, `try`, comprehensions, floats,
lists... Each gets a message and a hint with the construct to write instead.
Python's parser gives an exact span for every node, which is sturdier than
matching LALR parser states to example snippets.
"""
from __future__ import annotations

import ast as pyast
from collections.abc import Callable

from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from etran.dsl.diagnostics import Diagnostic, Source, Span

RULE = "unsupported-syntax"

# (message, hint) per Python node type that the language leaves out.
_UNSUPPORTED: dict[type, tuple[str, str]] = {
    pyast.While: ("`while` loops are not allowed: the verifier needs a loop bound it can see",
                  "write `for _ in range(MAX):` with a `break` when done"),
    pyast.Try: ("`try` is not allowed: there are no exceptions in the kernel",
                "check results explicitly, e.g. `if x is None: return XDP_PASS`"),
    pyast.Raise: ("`raise` is not allowed: there are no exceptions in the kernel",
                  "return an action instead, e.g. `return XDP_DROP`"),
    pyast.Assert: ("`assert` is not allowed: a program cannot stop with an error",
                   "test the condition with `if` and return an action"),
    pyast.Lambda: ("`lambda` is not allowed", "define a module-level `def` function"),
    pyast.ListComp: ("list comprehensions are not allowed", "write a `for i in range(N):` loop"),
    pyast.SetComp: ("set comprehensions are not allowed", "write a `for i in range(N):` loop"),
    pyast.DictComp: ("dict comprehensions are not allowed", "write a `for i in range(N):` loop"),
    pyast.GeneratorExp: ("generator expressions are not allowed", "write a `for i in range(N):` loop"),
    pyast.List: ("lists are not allowed: programs have no heap",
                 "use an `Array[T, N]` field in a Struct, or a map"),
    pyast.Set: ("sets are not allowed: programs have no heap",
                "use a HashMap with the elements as keys"),
    pyast.Dict: ("dicts are not allowed: programs have no heap",
                 "use a map, e.g. `table = HashMap(Key, Value, max_entries=1024)` at module level"),
    pyast.Tuple: ("tuples are not allowed", "assign or return one value at a time, or use a Struct"),
    pyast.Global: ("`global` is not allowed: a program keeps no state between runs except in maps",
                   "keep shared state in a map, e.g. `state = ArrayMap(State, max_entries=1)`"),
    pyast.Nonlocal: ("`nonlocal` is not allowed", "pass values as parameters and return results"),
    pyast.Delete: ("`del` is not allowed", "to remove a map entry call `m.delete(key)`"),
    pyast.Yield: ("generators are not allowed", "return a value, or write to a map or ring buffer"),
    pyast.YieldFrom: ("generators are not allowed", "return a value, or write to a map or ring buffer"),
    pyast.Await: ("`await` is not allowed: programs run to completion", "remove the `await`"),
    pyast.AsyncFunctionDef: ("`async def` is not allowed: programs run to completion", "use `def`"),
    pyast.AsyncFor: ("`async for` is not allowed", "use `for i in range(N):`"),
    pyast.AsyncWith: ("`async with` is not allowed", "use `with x.lock:`"),
    pyast.NamedExpr: ("`:=` is not allowed", "assign on a line of its own first"),
    pyast.Starred: ("star arguments are not allowed", "pass each argument by itself"),
    pyast.Slice: ("slicing is not allowed",
                  "index single elements, or take a header view with `pkt.header(H, offset)`"),
    pyast.JoinedStr: ("f-strings are not allowed: the kernel has no strings",
                      "emit numbers to a ring buffer and format them in user space"),
    pyast.Match: ("`match` is not allowed", "use `if`/`elif`/`else`"),
}


def _node_span(source: Source, node: pyast.AST) -> Span:
    line = getattr(node, "lineno", 1)
    col = getattr(node, "col_offset", 0) + 1
    end_line = getattr(node, "end_lineno", None) or line
    end_col = (getattr(node, "end_col_offset", None) or col) + 1
    if end_line != line:  # point at the first line only: the caret is for one line
        end_col = len(source.line(line)) + 1
    return Span(source, line, col, line, max(end_col, col + 1))


def _keyword_span(source: Source, node: pyast.AST, word: str) -> Span:
    """A span covering just the leading keyword of a compound statement."""
    line = getattr(node, "lineno", 1)
    col = getattr(node, "col_offset", 0) + 1
    return Span(source, line, col, line, col + len(word))


_KEYWORD = {pyast.While: "while", pyast.Try: "try", pyast.Raise: "raise", pyast.Assert: "assert",
            pyast.Global: "global", pyast.Nonlocal: "nonlocal", pyast.Delete: "del",
            pyast.AsyncFunctionDef: "async", pyast.AsyncFor: "async", pyast.AsyncWith: "async",
            pyast.Match: "match"}


def _special(source: Source, node: pyast.AST, parents: list[pyast.AST]) -> Diagnostic | None:
    """Constructs whose node type is fine but whose shape is not."""
    sp = _node_span(source, node)

    def d(msg: str, hint: str, span: Span = sp) -> Diagnostic:
        return Diagnostic(span, RULE, msg, (hint,))

    if isinstance(node, pyast.Constant):
        v = node.value
        if isinstance(v, float):
            return d("floating-point numbers are not allowed: BPF programs have no floating point",
                     "use fixed-point integers, e.g. scale by 1024 and shift back with `>> 10`")
        if isinstance(v, complex):
            return d("complex numbers are not allowed", "use integers")
        if isinstance(v, bytes):
            return d("bytes literals are not allowed", "use integer constants or a byte Array")
        if v is Ellipsis:
            return d("`...` is not allowed", "write `pass`")
    if isinstance(node, (pyast.For, pyast.While)) and node.orelse:
        return d("`else` on a loop is not allowed", "use a flag variable set before `break`")
    if isinstance(node, pyast.For) and not isinstance(node.target, pyast.Name):
        return d("a `for` loop takes one loop variable", "write `for i in range(N):`",
                 _node_span(source, node.target))
    if isinstance(node, pyast.Assign) and len(node.targets) > 1:
        return d("chained assignment is not allowed", "assign one name at a time")
    if isinstance(node, (pyast.FunctionDef, pyast.ClassDef)) and parents \
            and isinstance(parents[-1], (pyast.FunctionDef, pyast.AsyncFunctionDef)):
        what = "functions" if isinstance(node, pyast.FunctionDef) else "classes"
        return d(f"nested {what} are not allowed", f"define {what} at module level",
                 _keyword_span(source, node, "def" if what == "functions" else "class"))
    if isinstance(node, pyast.ClassDef) and node.decorator_list:
        return d("decorators on classes are not allowed", "remove the decorator",
                 _node_span(source, node.decorator_list[0]))
    if isinstance(node, pyast.ClassDef) and node.keywords:
        return d("class keywords (metaclass=...) are not allowed",
                 "derive from Struct or Header only")
    if isinstance(node, pyast.arguments):
        if node.defaults or (node.kw_defaults and any(node.kw_defaults)):
            first = (node.defaults or [k for k in node.kw_defaults if k])[0]
            return d("parameters cannot have default values", "pass every argument at each call",
                     _node_span(source, first))
        if node.vararg or node.kwarg:
            star = node.vararg or node.kwarg
            assert star is not None
            return d("`*args` and `**kwargs` are not allowed", "declare each parameter with its type",
                     _node_span(source, star))
        if node.kwonlyargs or node.posonlyargs:
            return d("keyword-only and positional-only parameters are not allowed",
                     "declare plain parameters `name: type`")
    if isinstance(node, pyast.Compare) and any(isinstance(o, (pyast.In, pyast.NotIn)) for o in node.ops):
        return d("`in` tests are not allowed", "look the key up in a map: `m.get(k) is not None`")
    if isinstance(node, pyast.Call) and node.keywords and any(k.arg is None for k in node.keywords):
        return d("`**` arguments are not allowed", "pass each argument by name")
    if isinstance(node, pyast.With) and (len(node.items) != 1
                                         or node.items[0].optional_vars is not None):
        return d("`with` takes exactly one lock and no `as`", "write `with c.lock:`")
    if isinstance(node, pyast.Import) and any(a.asname for a in node.names):
        return d("`import ... as` is not allowed", "write `from module import name`")
    if isinstance(node, pyast.Import) and len(node.names) > 1:
        return d("import one module per line", "write `from module import name`")
    if isinstance(node, pyast.ImportFrom) and node.level:
        return d("relative imports are not allowed", "import by the full module name")
    if isinstance(node, pyast.AugAssign) and isinstance(node.op, (pyast.Pow, pyast.MatMult)):
        return d("this augmented assignment is not allowed", "write the operation out with `x = ...`")
    if isinstance(node, pyast.BinOp) and isinstance(node.op, pyast.MatMult):
        return d("`@` is not an operator here", "use `*`")
    if isinstance(node, pyast.Subscript) and isinstance(node.slice, pyast.Tuple) \
            and not node.slice.elts:
        return d("empty subscript", "write an index")
    return None


def _find_unsupported(source: Source, tree: pyast.AST) -> list[Diagnostic]:
    found: list[Diagnostic] = []

    def visit(node: pyast.AST, parents: list[pyast.AST]) -> None:
        kind = type(node)
        # Tuples in subscripts (`Array[u8, 6]`) are how the language spells types.
        type_tuple = kind is pyast.Tuple and parents and isinstance(parents[-1], pyast.Subscript)
        if kind in _UNSUPPORTED and not type_tuple:
            msg, hint = _UNSUPPORTED[kind]
            span = (_keyword_span(source, node, _KEYWORD[kind]) if kind in _KEYWORD
                    else _node_span(source, node))
            found.append(Diagnostic(span, RULE, msg, (hint,)))
            return  # one message per construct, not one per nested part
        special = _special(source, node, parents)
        if special is not None:
            found.append(special)
            if not isinstance(node, pyast.arguments):
                return
        parents.append(node)
        for child in pyast.iter_child_nodes(node):
            visit(child, parents)
        parents.pop()

    visit(tree, [])
    return found


def _lark_message(source: Source, err: UnexpectedInput) -> Diagnostic:
    line = getattr(err, "line", 1) or 1
    col = getattr(err, "column", 1) or 1
    if isinstance(err, UnexpectedToken):
        tok = err.token
        what = "end of line" if tok.type == "_NEWLINE" else (
            "indentation" if tok.type in ("_INDENT", "_DEDENT") else f"`{tok}`")
        if tok.type == "$END":
            what = "end of file"
        expected = sorted(_readable(t) for t in err.expected if not t.startswith("_") or t == "_NEWLINE")
        hint = ("expected one of: " + ", ".join(expected[:8])) if expected else "check the syntax"
        end = col + max(len(str(tok)), 1) if tok.type not in ("_NEWLINE", "$END") else col + 1
        return Diagnostic(Span(source, line, col, line, end), "syntax", f"unexpected {what}", (hint,))
    if isinstance(err, UnexpectedCharacters):
        ch = source.line(line)[col - 1:col] or "?"
        return Diagnostic(Span(source, line, col, line, col + 1), "syntax",
                          f"unexpected character `{ch}`", ("this character has no meaning here",))
    if isinstance(err, UnexpectedEOF):
        return Diagnostic(None, "syntax", f"{source.name}: unexpected end of file",
                          ("a block or bracket is not closed",))
    return Diagnostic(Span(source, line, col, line, col + 1), "syntax", "invalid syntax", ())


_TOKEN_TEXT = {"NAME": "a name", "DEC_NUMBER": "a number", "LPAR": "`(`", "RPAR": "`)`",
               "COLON": "`:`", "COMMA": "`,`", "EQUAL": "`=`", "_NEWLINE": "end of line",
               "LSQB": "`[`", "RSQB": "`]`", "DOT": "`.`", "MORETHAN": "`>`", "LESSTHAN": "`<`"}


def _readable(tok: str) -> str:
    return _TOKEN_TEXT.get(tok, tok.lower() if tok.isupper() else tok)


def explain_syntax_errors(source: Source, err: UnexpectedInput) -> list[Diagnostic]:
    """All constructs outside the language in `source`, or lark's own error if none is found."""
    try:
        tree = pyast.parse(source.text, filename=source.name, feature_version=(3, 11))
    except SyntaxError as perr:
        line = perr.lineno or 1
        col = perr.offset or 1
        end = perr.end_offset if perr.end_lineno == line and perr.end_offset else col + 1
        return [Diagnostic(Span(source, line, col, line, max(end, col + 1)), "syntax",
                           f"invalid Python syntax: {perr.msg}",
                           ("transport files must be valid Python 3.11",))]
    found = _find_unsupported(source, tree)
    return found or [_lark_message(source, err)]


ExplainFn = Callable[[Source, UnexpectedInput], list[Diagnostic]]

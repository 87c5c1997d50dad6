"""The parser's two ways to a syntax tree give the same tree.

`etran.dsl.parser` reads a program with Python's own parser and converts its tree
(`_parse_python`), or declines, and then lark parses it (`_parse_lark`): lark's grammar defines
the language and makes every syntax diagnostic. These tests hold the fast way to lark's: on
every program in the repository, on generated programs and on mutations of all of them, the
fast way either declines or gives exactly lark's result (the same tree with the same spans,
or the same diagnostics).
"""
from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from etran.dsl import ast, parser
from etran.dsl.diagnostics import DiagnosticError, Source

ROOT = Path(__file__).resolve().parents[2]


def _programs() -> list[Path]:
    found = [*ROOT.glob("examples/*.py"), *ROOT.glob("tests/data/*.py"), *ROOT.glob("tests/corpus/*/*.py"),
             *ROOT.glob("tests/property/found/*.py"), *ROOT.glob("etran/transports/*.py"),
             *ROOT.glob("bench/c/*.py"), ROOT / "etran" / "bpf_templates" / "headers.py"]
    return sorted(p for p in found if "from etran" in p.read_text())


PROGRAMS = _programs()
# Programs outside the language (the syntax part of the bad corpus): lark must see them.
OUTSIDE = re.compile(r"# expect: (syntax|unsupported-syntax) at")


Result = ast.Module | tuple[str, str] | None


def fast(text: str, name: str = "t.py") -> Result:
    source = Source(name, text)
    try:
        return parser._parse_python(source, text if text.endswith("\n") else text + "\n")
    except DiagnosticError as err:
        return ("error", str(err))


def lark(text: str, name: str = "t.py") -> Result:
    source = Source(name, text)
    try:
        return parser._parse_lark(source, text if text.endswith("\n") else text + "\n")
    except DiagnosticError as err:
        return ("error", str(err))


def agrees(text: str, name: str = "t.py") -> bool:
    """The fast way declines, or gives lark's result. Spans compare by position (a Span's
    source is left out of its equality), so the trees are compared field by field."""
    mine = fast(text, name)
    return mine is None or mine == lark(text, name)


@pytest.mark.parametrize("path", PROGRAMS, ids=[str(p.relative_to(ROOT)) for p in PROGRAMS])
def test_every_program_in_the_repository(path: Path) -> None:
    text = path.read_text()
    mine = fast(text, str(path))
    if mine is None:
        # Only programs outside the language go to lark.
        assert OUTSIDE.search(text), f"{path}: the fast parser declined a program lark accepts"
        return
    assert mine == lark(text, str(path))


def test_the_examples_are_parsed_without_lark() -> None:
    """The examples and the standard headers take the fast way; lark is not imported."""
    probe = ("import sys, pathlib\nfrom etran.dsl.parser import parse\n"
             "for p in sys.argv[1:]:\n    parse(pathlib.Path(p).read_text(), p)\n"
             "print('lark' in sys.modules)")
    files = [str(p) for p in ROOT.glob("examples/*.py")] + [str(ROOT / "etran/bpf_templates/headers.py")]
    done = subprocess.run([sys.executable, "-c", probe, *files], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_generated_programs() -> None:
    from etran.testing.progen import sample_programs

    for p in sample_programs(40, max_statements=60, seed=11):
        assert fast(p.source) is not None
        assert agrees(p.source), p.source


# Layouts and constructs where the two parsers differ in what they accept or in the spans they
# give: each must be declined, or agree.
CASES = [
    "",
    "\n\n",
    "# only a comment",
    "  # an indented comment\nx = 1\n",
    "x = 1",
    "x = 1   \n   ",
    '"""doc"""\n"""not a doc"""\n',
    "def f():\n    '''doc'''\n    'stray'\n    return 1\n",
    "class C(Struct):\n    '''doc'''\n    a: u32\n    'x'\n    pass\n    size = 4\n"
    "    def m(self) -> int:\n        return 1\n",
    "class C: a: u32\n",
    "class C(A, metaclass=B): pass\n",
    "class C(): pass\n",
    "if a:\n    pass\nelif b:\n    'kept?'\nelse:\n    'dropped'\n",
    "if a:\n    pass\nelse:\n    'dropped'\n",
    "if a:\n    pass\nelse:\n    if b:\n        pass\n",
    "if a: x = 1; y = 2;  # c\nelif b: pass\n\n# trailing\n",
    "for i in range(3):\n    continue\n",
    "for (i) in range(3):\n    pass\n",
    "for i, in x:\n    pass\n",
    "with lock(c):\n    pass\n",
    "with (lock(c)):\n    pass\n",
    "with (lock(c),):\n    pass\n",
    "with ((a)) :\n    pass\n",
    "with (a) as b:\n    pass\n",
    "with a, b:\n    pass\n",
    "x = a[1, 2]\n",
    "x = a[1, 2,]\n",
    "x = a[(1, 2)]\n",
    "x = a[(1), 2]\n",
    "x = a[1:2]\n",
    "x = (a) or b or (c)\n",
    "x = a or (b or c) and d\n",
    "x = (a\n  or  # c\n  b) or c\n",
    "x = not (a) == -(b) ** ~c\n",
    "x = a if b else c if d else e\n",
    "x = a < b <= c is not d is e\n",
    "x = a in b\n",
    "x = f(a, b=1)(c)[d].e\n",
    "x = f(b=1, a)\n",
    "x = f(*a)\n",
    "x = f(**a)\n",
    "x = 0x1F + 0b1 + 0o7 + 1_000 + 00 + 0_0\n",
    "x = 1.5\n",
    "x = 1if y else 2\n",
    "x = 42 .bit_length()\n",
    "x = 'a' 'b'\n",
    "x = ('a'\n     # c\n     'b')\n",
    "x = r'a'\n",
    "x = b'a'\n",
    "x = u'a'\n",
    "x = f'a'\n",
    'x = """a\\"""b"""\n',
    "x: u32\n",
    "(x): u32 = 1\n",
    "x.y: u32 = 1\n",
    "x **= 2\n",
    "x //= 2\n",
    "x = y = 1\n",
    "x, y = 1, 2\n",
    "x = 1; import foo\n",
    "import foo; x = 1\n",
    "import foo.bar\n",
    "import foo as f\n",
    "from a.b import (c as d,\n   e,)\n",
    "from a . b import c\n",
    "from . import c\n",
    "from a import *  # c\n\n\nx = 1\n",
    "def f(a: u32, b) -> u32:\n    return a\n",
    "def f(a=1):\n    pass\n",
    "def f(*a):\n    pass\n",
    "def f():\n    def g():\n        pass\n",
    "def f():\n    import x\n",
    "def  \\\n f():\n    pass\n",
    "@xdp\n\n# c\n@other(1)\ndef f(pkt: Packet) -> int:\n    return XDP_PASS\n",
    "@dec\nclass C:\n    pass\n",
    "if x:\n    def f():\n        pass\n",
    "x = 1 + \\\n    2\n",
    "x = 1\n\\\ny = 2\n",
    "if a:\n    x = 1\n\\\n    y = 2\n",
    "if a:\n\tx = 1\n",
    "x = 1\t+ 2\n",
    "x = 1\r\ny = 2\r\n",
    "x = 1\x0c\n",
    "x = '\u00e9' + y  # \u00e9\u00e9\n",
    "caf\u00e9 = 1\n",
    "x = 1  # \u2028 y = 2\n",
    "while x:\n    pass\n",
    "x = [1]\n",
    "x = lambda: 1\n",
    "x = ...\n",
    "del x\n",
    "return\n",
    "x = (yield)\n",
    "def f():\n    return (1)\n\n\n",
    "def f():\n    if a:\n        return 1\n    # c\n",
    "def f():\n    pass",
    "x = (\n1)\n",
    "if(x):\n    return(x)\nelif(y):\n    pass\n",
    "for i in(x):\n    x = not(x)\n",
    "with(a):\n    x = a if(b)else(c)\n",
    "x = 1 \\\n\n",
    "if x:\n    y = 1 \\\n\nz = 2\n",
    "def f():\n    return 1 \\\n\n\n\ndef g():\n    pass\n",
    "x = 1;\n",
    "x = 1;;\n",
    "x = 1 ; y = 2 ;\n",
]


@pytest.mark.parametrize("text", CASES)
def test_tricky_layouts(text: str) -> None:
    assert agrees(text)


@pytest.mark.parametrize("text", [
    "x = a[(1), 2]\n", "for (i) in range(3):\n    pass\n", "with (lock(c),):\n    pass\n",
    "x = 1; import foo\n", "import foo; x = 1\n", "x = r'a'\n", "if a:\n\tx = 1\n",
    "x = 1\n\\\ny = 2\n", "caf\u00e9 = 1\n", "x = 1\r\ny = 2\r\n",
])
def test_declined(text: str) -> None:
    """Where the grammar and Python's parser part (or may), lark decides."""
    assert fast(text) is None


def test_the_fast_way_takes_the_common_layouts() -> None:
    for text in ["", "# only a comment", "x = 1", '"""doc"""\n"""not a doc"""\n',
                 "if a:\n    pass\nelif b:\n    'kept?'\nelse:\n    'dropped'\n",
                 "x = (a) or b or (c)\n", "x = '\u00e9' + y  # \u00e9\u00e9\n",
                 "from a.b import (c as d,\n   e,)\n", "with (lock(c)):\n    pass\n"]:
        assert fast(text) is not None, text


def test_stray_strings_are_reported_by_either_way() -> None:
    text = "def f():\n    x = 'a'\n    return 1\n"
    mine = fast(text)
    assert isinstance(mine, tuple) and "strings are only allowed as docstrings" in mine[1]
    assert mine == lark(text)


_INSERTS = ["(", ")", "[", "]", ":", ";", ",", ".", "=", " ", "\n", "\\\n", "#", "'", '"', "    ",
            "\n    ", " if ", " else ", "elif x:", "else:", " or ", " and ", " not ", " is ", " in ",
            " as ", "*", "**", "-", "~", "0x1", "1_0", "1.5", "x", "None", "'s'", "r's'", "import y",
            "pass", "return", "\t", "\u00e9", "@d\n", "def g():\n    pass\n", "x: u32 = 1\n", "(x, y)"]


def _mutants(text: str, rng: random.Random, count: int) -> list[str]:
    out = []
    lines = text.split("\n")
    for _ in range(count):
        a = rng.randrange(max(len(lines) - 20, 1))
        t = "\n".join(lines[a:a + rng.randint(5, 30)])
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(t) + 1)
            k = rng.random()
            if k < 0.3:
                t = t[:i] + t[i + rng.randint(1, 3):]
            elif k < 0.8:
                t = t[:i] + rng.choice(_INSERTS) + t[i:]
            else:
                ls = t.split("\n")
                j = rng.randrange(len(ls))
                ls[j] = rng.choice(["", "  ", "    ", "        "]) + ls[j].lstrip()
                t = "\n".join(ls)
        out.append(t)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_mutations(seed: int) -> None:
    """Random edits of real programs: wherever the fast way takes the result, lark agrees (a
    few thousand more per seed run as `python tests/compiler/test_parser_fast.py SEED N`)."""
    rng = random.Random(seed)
    texts = [p.read_text() for p in PROGRAMS]
    taken = 0
    for base in rng.sample(texts, 12):
        for mutant in _mutants(base, rng, 25):
            mine = fast(mutant)
            if mine is not None:
                taken += 1
                assert mine == lark(mutant), mutant
    assert taken > 20


if __name__ == "__main__":
    seed, count = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    texts = [p.read_text() for p in PROGRAMS]
    taken = 0
    for _ in range(count):
        (mutant,) = _mutants(rng.choice(texts), rng, 1)
        mine = fast(mutant)
        if mine is not None:
            taken += 1
            if mine != lark(mutant):
                print(f"disagree:\n{mutant}")
                sys.exit(1)
    print(f"{count} mutants, {taken} taken by the fast way, all agree with lark")

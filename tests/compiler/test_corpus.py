"""The bad-program corpus: every checker rule, broken by a realistic transport, with golden output.

`tests/corpus/bad/NN_name.py` is a complete transport that breaks exactly one rule. A header
comment says which rule and where the first (and only) diagnostic must point:

    # expect: RULE at LINE:COL

`tests/corpus/bad/NN_name.expected` is the exact stderr of `etran check tests/corpus/bad/NN_name.py`
run from the repository root (so paths in it are relative).

Each golden was read by hand: the rule is the one the program breaks, the caret is under the
offending construct, the message says what is wrong in the language's terms and a hint says what
to write instead. After an intended change to a message, regenerate the goldens that changed with

    .venv/bin/python tests/compiler/test_corpus.py --regenerate [NN_name ...]

and read every changed file before committing it. Files listed in `BUGS` are known checker bugs:
their `.expected` holds the output the checker *should* give (never the buggy output), the tests
are `xfail(strict=True)`, so fixing the bug makes them fail loudly until the entry is removed;
`--regenerate` leaves them alone unless named.

`tests/corpus/good/` holds programs the kernel verifier accepts (`# expect: ok`), each a
reproducer for a checker bug that rejected it (`GOOD_BUGS` lists the ones still open).
"""
from __future__ import annotations

import ast as pyast
import contextlib
import io
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "tests" / "corpus" / "bad"
GOOD = ROOT / "tests" / "corpus" / "good"

_EXPECT = re.compile(r"^# expect: (?P<rule>[a-z][a-z-]*) at (?P<line>\d+):(?P<col>\d+)$", re.M)
_DIAG = re.compile(r"^(?P<path>\S+?):(?P<line>\d+):(?P<col>\d+): error\[(?P<rule>[a-z-]+)\]: ", re.M)

# Every rule name the checker and the parser report (`sink.error`/`fail`/`Diagnostic` calls in
# etran/{dsl,check,analysis,ir,lower,backend}/*.py). `test_rule_list_matches_the_source` keeps it current:
# a new rule fails that test until it is added here and to the corpus.
RULES = (
    "bounds", "budget", "call-depth", "constant", "hook", "hook-helper", "hook-return", "import",
    "literal-range", "lock", "lock-exit", "lock-helper", "lock-nested", "loop-bound", "map-decl",
    "map-ref-after-update",
    "map-only", "map-op", "missing-return", "module-level", "name", "narrowing", "no-effect",
    "none-check", "packet-access", "recursion", "signedness", "stack", "struct", "syntax",
    "timer", "type", "unassigned", "unsupported-syntax", "view-after-resize",
)
# Rules no program can trigger, with the reason. Empty: every rule above has a corpus file.
UNREACHABLE: dict[str, str] = {}

# Known checker bugs, by corpus file: (which tests fail, what is wrong). "all" = the diagnostic
# itself is wrong (location, rule, count, crash, or the program is accepted); "golden" = the
# diagnostic is right but its text misses what the brief requires (a hint saying what to write).
BUGS: dict[str, tuple[str, str]] = {}
GOOD_BUGS: dict[str, str] = {}


def _bad_files() -> list[Path]:
    return sorted(BAD.glob("*.py"))


def _good_files() -> list[Path]:
    return sorted(GOOD.glob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@cache
def run_cli(*argv: str) -> tuple[int, str, str]:
    """`etran.cli.main(argv)` from the repository root: (exit code, stdout, stderr)."""
    from etran.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as e:  # main should never exit by itself; record it if it does
                code = e.code if isinstance(e.code, int) else 99
    finally:
        os.chdir(cwd)
    return code, out.getvalue(), err.getvalue()


def expectation(path: Path) -> tuple[str, int, int]:
    m = _EXPECT.search(path.read_text())
    assert m, f"{_rel(path)} has no `# expect: RULE at LINE:COL` header"
    return m["rule"], int(m["line"]), int(m["col"])


def _params(kind: str) -> list[object]:
    out = []
    for p in _bad_files():
        bug = BUGS.get(p.stem)
        marks = []
        if bug is not None and (bug[0] == "all" or kind == "golden"):
            marks.append(pytest.mark.xfail(reason=f"checker bug: {bug[1]}", strict=True))
        out.append(pytest.param(p, id=p.stem, marks=marks))
    return out


# ---------------------------------------------------------------- the bad corpus
@pytest.mark.parametrize("path", _params("diagnostic"))
def test_bad_program_reports_its_rule_where_the_header_says(path: Path) -> None:
    rule, line, col = expectation(path)
    code, out, err = run_cli("check", _rel(path))
    assert "Traceback" not in out + err and "internal error" not in err, err
    assert code == 1, f"exit code {code}, expected 1\nstdout:\n{out}\nstderr:\n{err}"
    assert out == "", f"a failed check prints nothing on stdout, got:\n{out}"
    first = err.splitlines()[0] if err else ""
    want = f"{_rel(path)}:{line}:{col}: error[{rule}]: "
    assert first.startswith(want), f"first line:\n  {first}\nexpected it to start with:\n  {want}"
    diags = list(_DIAG.finditer(err))
    assert len(diags) == 1, f"expected exactly one diagnostic, got {len(diags)}:\n{err}"
    lines = err.rstrip("\n").splitlines()
    assert len(lines) >= 4, f"expected message, source line, caret line and a hint:\n{err}"
    assert re.match(rf"^ +{line} \| ", lines[1]), f"source line missing:\n{err}"
    caret = lines[2]
    assert re.match(r"^ +\| ", caret) and "^" in caret, f"caret line missing:\n{err}"
    # The caret sits under column `col` of the echoed source line.
    gutter = caret.index("| ") + 2
    assert caret.index("^") - gutter == col - 1, f"caret not under column {col}:\n{err}"
    assert any(x.startswith("  hint: ") for x in lines[3:]), f"no hint saying what to write:\n{err}"


@pytest.mark.parametrize("path", _params("golden"))
def test_bad_program_output_matches_its_golden(path: Path) -> None:
    golden = path.with_suffix(".expected")
    assert golden.is_file(), f"missing golden {_rel(golden)}: run this file with --regenerate"
    _code, _out, err = run_cli("check", _rel(path))
    assert err == golden.read_text()


def test_every_bad_program_starts_as_a_transport_and_has_a_golden() -> None:
    for p in _bad_files():
        text = p.read_text()
        assert text.startswith("from etran.dsl import"), f"{_rel(p)}: start with the DSL import"
        assert re.search(r"^@(xdp|egress|gen|timer)\b", text, re.M), f"{_rel(p)} defines no hook"
        assert p.with_suffix(".expected").is_file(), f"{_rel(p)} has no golden"
        expectation(p)
    stems = {p.stem for p in _bad_files()}
    assert not set(BUGS) - stems, f"BUGS names files that do not exist: {set(BUGS) - stems}"
    assert not {p.stem for p in BAD.glob("*.expected")} - stems, "a golden without its program"


def test_the_corpus_covers_every_rule() -> None:
    files = _bad_files()
    assert len(files) >= 40, f"the corpus has {len(files)} programs; keep at least 40"
    covered = {expectation(p)[0] for p in files}
    unknown = covered - set(RULES)
    assert not unknown, f"headers name rules the checker does not have: {sorted(unknown)}"
    missing = set(RULES) - covered - set(UNREACHABLE)
    assert not missing, f"no corpus program breaks: {sorted(missing)}"


def _rules_in_source() -> set[str]:
    """Rule names passed to sink.error/.warning, fail(...) and Diagnostic(...) in the checker."""
    found: set[str] = set()
    files = [f for pkg in ("dsl", "check", "analysis", "ir", "lower", "backend")
             for f in sorted((ROOT / "etran" / pkg).glob("*.py"))]
    for f in files:
        tree = pyast.parse(f.read_text(), str(f))
        consts = {t.id: n.value.value for n in tree.body if isinstance(n, pyast.Assign)
                  for t in n.targets if isinstance(t, pyast.Name)
                  and isinstance(n.value, pyast.Constant) and isinstance(n.value.value, str)}
        for node in pyast.walk(tree):
            if not isinstance(node, pyast.Call) or len(node.args) < 2:
                continue
            fn = node.func
            name = fn.attr if isinstance(fn, pyast.Attribute) else getattr(fn, "id", "")
            if name not in ("error", "warning", "fail", "Diagnostic"):
                continue
            arg = node.args[1]
            if isinstance(arg, pyast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
            elif isinstance(arg, pyast.Name) and arg.id in consts:
                found.add(consts[arg.id])
    return found


def test_rule_list_matches_the_source() -> None:
    in_source = _rules_in_source()
    assert set(RULES) | set(UNREACHABLE) == in_source, (
        f"rules in the source but not in RULES: {sorted(in_source - set(RULES))}; "
        f"in RULES but no longer in the source: {sorted(set(RULES) - in_source)}")


# ---------------------------------------------------------------- programs the kernel accepts
@pytest.mark.parametrize("path", [
    pytest.param(p, id=p.stem, marks=[pytest.mark.xfail(reason=f"checker bug: {GOOD_BUGS[p.stem]}",
                                                         strict=True)]
                 if p.stem in GOOD_BUGS else [])
    for p in _good_files()])
def test_program_the_kernel_accepts_passes_the_check(path: Path) -> None:
    code, out, err = run_cli("check", _rel(path))
    assert code == 0 and err == "", err
    assert out.startswith(f"{_rel(path)}: ok")


# ---------------------------------------------------------------- command-line errors
def _one_clear_line(err: str) -> str:
    """The single error line of a usage error; argparse may add its one `usage:` line."""
    assert "Traceback" not in err, err
    lines = [x for x in err.splitlines() if x.strip() and not x.startswith("usage: ")]
    assert len(lines) == 1, f"expected one error line, got:\n{err}"
    assert lines[0].startswith("etran"), lines[0]
    return lines[0]


def test_missing_file_is_a_usage_error() -> None:
    code, _out, err = run_cli("check", "tests/corpus/bad/no_such_transport.py")
    assert code == 2
    assert err == "etran: cannot read tests/corpus/bad/no_such_transport.py: no such file\n"


def test_directory_instead_of_file_is_a_usage_error() -> None:
    code, _out, err = run_cli("check", "tests/corpus")
    assert code == 2
    assert _one_clear_line(err).startswith("etran: cannot read tests/corpus: ")


@pytest.mark.parametrize("argv,says", [
    (("check", "tests/corpus/bad/01_unchecked_flow_lookup.py", "--bogus"),
     "unrecognized arguments: --bogus"),
    (("check",), "the following arguments are required: file"),
    (("chek", "tests/corpus/bad/01_unchecked_flow_lookup.py"), "invalid choice: 'chek'"),
], ids=["unknown-option", "missing-file-argument", "unknown-command"])
def test_bad_cli_argument_is_a_usage_error(argv: tuple[str, ...], says: str) -> None:
    code, _out, err = run_cli(*argv)
    assert code == 2
    line = _one_clear_line(err)
    assert "error: " in line and says in line, line


def test_missing_file_exit_code_from_a_real_process() -> None:
    r = subprocess.run([sys.executable, "-m", "etran.cli.main", "check", "no_such_transport.py"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr == "etran: cannot read no_such_transport.py: no such file\n"
    assert r.stdout == ""


# ---------------------------------------------------------------- regenerating goldens
def _regenerate(names: list[str]) -> None:
    for p in _bad_files():
        if names and p.stem not in names:
            continue
        if not names and p.stem in BUGS:
            print(f"skipped {p.stem}: its golden is the fixed output (see BUGS)")
            continue
        code, _out, err = run_cli("check", _rel(p))
        golden = p.with_suffix(".expected")
        old = golden.read_text() if golden.is_file() else None
        if old != err:
            golden.write_text(err)
            print(f"wrote {_rel(golden)} (exit {code}): read it before committing")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--regenerate":
        sys.path.insert(0, str(ROOT))
        _regenerate(sys.argv[2:])
    else:
        print(__doc__)

"""Every example in docs/language.md compiles, and every `error[rule]` example fails with its rule.

This keeps the language reference true: an example that stops compiling, or a
rule that stops firing, fails here. The kernel test loads every good example
into the real verifier.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from etran.dsl.diagnostics import DiagnosticError
from etran.pipeline import check_source, compile_program

DOC = Path(__file__).resolve().parents[2] / "docs" / "language.md"
_BLOCK = re.compile(r"```python(?: error\[(?P<rule>[a-z-]+)\])?\n(?P<code>.*?)```", re.S)


def _examples() -> list[tuple[str, str | None, str]]:
    out = []
    text = DOC.read_text()
    for m in _BLOCK.finditer(text):
        line = text[:m.start()].count("\n") + 2
        out.append((f"language.md:{line}", m.group("rule"), m.group("code")))
    return out


EXAMPLES = _examples()
GOOD = [(n, c) for n, r, c in EXAMPLES if r is None]
BAD = [(n, r, c) for n, r, c in EXAMPLES if r is not None]


def test_the_reference_has_examples_of_both_kinds() -> None:
    assert len(GOOD) >= 10 and len(BAD) >= 5


@pytest.mark.parametrize("name,code", GOOD, ids=[n for n, _ in GOOD])
def test_good_example_compiles(name: str, code: str) -> None:
    program = check_source(code, name)
    obj = compile_program(program)
    assert obj.elf.startswith(b"\x7fELF")
    assert program.hooks, "every example defines at least one hook"


@pytest.mark.parametrize("name,rule,code", BAD, ids=[n for n, _, _ in BAD])
def test_error_example_fails_with_its_rule(name: str, rule: str, code: str) -> None:
    with pytest.raises(DiagnosticError) as err:
        check_source(code, name)
    rules = [d.rule for d in err.value.diagnostics]
    assert rule in rules, f"expected rule {rule}, got {rules}:\n{err.value}"


@pytest.mark.kernel
@pytest.mark.parametrize("name,code", GOOD, ids=[n for n, _ in GOOD])
def test_good_example_passes_the_kernel_verifier(kernel: None, name: str, code: str) -> None:
    from etran.runtime.loader import load_object
    obj = compile_program(check_source(code, name))
    with load_object(obj.elf) as loaded:
        assert set(loaded.programs) == {p.name for p in obj.programs}

"""The README's example compiles, and the error it shows is the one `etran check` prints."""
from __future__ import annotations

from pathlib import Path

import pytest

from etran.dsl.diagnostics import DiagnosticError
from etran.pipeline import check_source, compile_program

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    """Fenced blocks whose info string is exactly `lang`."""
    blocks, current, info = [], None, ""
    for line in README.splitlines(keepends=True):
        if line.startswith("```"):
            if current is None:
                current, info = [], line[3:].strip()
            else:
                if info == lang:
                    blocks.append("".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def test_the_example_transport_compiles() -> None:
    code = _blocks("python")[0]
    program = check_source(code, "police.py")
    assert compile_program(program).elf[:4] == b"\x7fELF"


def test_the_shown_error_is_what_check_prints() -> None:
    code = _blocks("python")[0]
    broken = code.replace("    if b is None:\n        return XDP_PASS\n", "", 1)
    assert broken != code
    with pytest.raises(DiagnosticError) as err:
        check_source(broken, "police.py")
    shown = next(b for b in _blocks("") if "error[" in b)
    assert str(err.value).strip() == shown.strip()

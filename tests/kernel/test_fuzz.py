"""`etran fuzz` finds a deliberately wrong compiler within its default budget, and reports it well.

Each test compiles with a seeded defect (`defects=` in the lowering: a signed
comparison emitted unsigned, a sign extension emitted as zero extension) and
runs the fuzzer exactly as a user would, with its default number of examples.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from etran.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.kernel


def _with_defect(monkeypatch: pytest.MonkeyPatch, defect: str) -> None:
    import etran.pipeline as pipeline
    real = pipeline.compile_program

    def broken(program, observe=False, **kw):  # type: ignore[no-untyped-def]
        return real(program, observe=observe, defects=frozenset({defect}))
    monkeypatch.setattr(pipeline, "compile_program", broken)


@pytest.mark.parametrize("defect,source,hook", [
    ("unsigned-compare", ROOT / "examples" / "dctcp.py", "rx"),
    ("no-sign-extend", ROOT / "tests" / "data" / "sign_extend.py", "classify"),
])
def test_fuzz_catches_a_seeded_compiler_defect(kernel: None, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                               defect: str, source: Path, hook: str) -> None:
    _with_defect(monkeypatch, defect)
    code = main(["fuzz", str(source), "--hook", hook, "--seed", "1", "--save", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert f"MISMATCH in `{hook}`" in out and "kernel" in out and "interpreter" in out
    assert f"program {hook} (xdp)" in out            # the disassembly with DSL lines
    (saved,) = tmp_path.glob("*.json")
    record = json.loads(saved.read_text())
    assert record["hook"] == hook and record["source"] == source.read_text()
    assert record["differences"] and record["input"]["packet"]


def test_fuzz_without_a_defect_finds_nothing(kernel: None, capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    code = main(["fuzz", str(ROOT / "tests" / "data" / "sign_extend.py"), "--examples", "300",
                 "--seed", "2", "--save", str(tmp_path)])
    out, _ = capsys.readouterr()
    assert code == 0 and "classify: 300 cases, 0 mismatches" in out
    assert not list(tmp_path.glob("*.json"))


def test_fuzz_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz"]) == 2
    assert main(["fuzz", str(ROOT / "examples" / "dctcp.py"), "--hook", "nope"]) == 2
    assert main(["fuzz", str(ROOT / "examples" / "dctcp.py"), "--examples", "0"]) == 2
    _, err = capsys.readouterr()
    assert "Traceback" not in err

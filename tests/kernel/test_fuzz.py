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


SLOTS = (Path(__file__).resolve().parents[1] / "data" / "timer_slots.py").read_text()


def test_fuzz_shows_a_timer_counterexample_as_the_entry_it_fired_for(
        kernel: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    _with_defect(monkeypatch, "unsigned-compare")
    source = tmp_path / "slots.py"
    source.write_text(SLOTS)
    code = main(["fuzz", str(source), "--hook", "tick", "--seed", "1", "--save",
                 str(tmp_path / "saved")])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert "MISMATCH in `tick`" in out and "program tick__fire (xdp)" in out
    table = out[out.index("  @timer tick fired for slots["):]
    assert "\n  action " not in table and "\n  packet " not in table  # a timer has neither
    assert "MISMATCH: 1 difference" in table


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


def test_a_devmap_is_set_and_emptied_between_runs_and_fuzzed_with_its_slots_filled(
        kernel: None) -> None:
    """A DevMap holds interfaces the kernel resolves: the harness empties its slots and sets
    the ones a run asks for (it once refused: `clear map 'ports': not supported for devmap
    maps`), and fuzzing fills slots with loopback, so both the redirect and its fallback run."""
    from collections import Counter

    from etran.abi import LOOPBACK_IFINDEX, XDP_PASS, XDP_REDIRECT
    from etran.differential.harness import KernelHarness, run_both
    from etran.differential.inputs import fuzz_hook
    from etran.interp.state import MapStore, frame_input
    from etran.pipeline import compile_file

    obj = compile_file(ROOT / "tests" / "data" / "devmap_forward.py", observe=True)
    with KernelHarness(obj) as runner:
        full = MapStore(obj.program, runner.ncpu)
        full.set("ports", 1, LOOPBACK_IFINDEX)
        for store, action in ((full, XDP_REDIRECT), (MapStore(obj.program, runner.ncpu), XDP_PASS),
                              (full, XDP_REDIRECT)):
            kernel_result, _, diffs = run_both(runner, "forward",
                                               frame_input(bytes(61), maps=store))
            assert kernel_result.action == action and diffs == []
            assert kernel_result.redirect == ("ports", 1)
            assert dict(runner.loaded.maps["ports"].items()) == \
                {k: v.to_bytes(4, "little") for k, v in store["ports"].entries.items()}
        actions: Counter[int | None] = Counter()
        real = runner.run

        def counting(hook: str, inp: object) -> object:
            result = real(hook, inp)  # type: ignore[arg-type]
            actions[result.action] += 1
            return result
        runner.run = counting  # type: ignore[assignment]
        report = fuzz_hook(runner, "forward", 400, seed=1)
    assert report.cases == 400 and report.counterexample is None
    assert actions[XDP_REDIRECT] > 0 and actions[XDP_PASS] > 0

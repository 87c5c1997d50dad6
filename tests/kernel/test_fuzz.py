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


@pytest.mark.parametrize("engine", [[], ["--sweep"]], ids=["hypothesis", "sweep"])
@pytest.mark.parametrize("defect,source,hook", [
    ("unsigned-compare", ROOT / "examples" / "dctcp.py", "rx"),
    ("no-sign-extend", ROOT / "tests" / "data" / "sign_extend.py", "classify"),
])
def test_fuzz_catches_a_seeded_compiler_defect(kernel: None, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                               defect: str, source: Path, hook: str,
                                               engine: list[str]) -> None:
    _with_defect(monkeypatch, defect)
    code = main(["fuzz", str(source), "--hook", hook, "--seed", "1", "--save", str(tmp_path),
                 *engine])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert f"MISMATCH in `{hook}`" in out and "kernel" in out and "interpreter" in out
    assert f"program {hook} (xdp)" in out            # the disassembly with DSL lines
    (saved,) = tmp_path.glob("*.json")
    record = json.loads(saved.read_text())
    assert record["hook"] == hook and record["source"] == source.read_text()
    assert record["differences"] and record["input"]["packet"]


SLOTS = (Path(__file__).resolve().parents[1] / "data" / "timer_slots.py").read_text()


@pytest.mark.parametrize("engine", [[], ["--sweep"]], ids=["hypothesis", "sweep"])
def test_fuzz_shows_a_timer_counterexample_as_the_entry_it_fired_for(
        kernel: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path, engine: list[str]) -> None:
    _with_defect(monkeypatch, "unsigned-compare")
    source = tmp_path / "slots.py"
    source.write_text(SLOTS)
    code = main(["fuzz", str(source), "--hook", "tick", "--seed", "1", "--save",
                 str(tmp_path / "saved"), *engine])
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


def test_a_sweep_is_reproducible_and_shrinks_what_it_finds(kernel: None) -> None:
    """`sweep_hook` draws the same inputs for the same seed, and `shrink` turns the batch
    it failed on into one input that still fails, with at most as many bytes set: the
    other frames dropped, byte strings cut short and runs zeroed."""
    from etran.differential import sweep
    from etran.differential.harness import KernelHarness, compare
    from etran.pipeline import check_file, compile_program

    program = check_file(ROOT / "examples" / "dctcp.py")
    obj = compile_program(program, observe=True, defects=frozenset({"unsigned-compare"}))
    with KernelHarness(obj) as runner:
        first = sweep.sweep_hook(runner, "rx", 1000, seed=4)
        again = sweep.sweep_hook(runner, "rx", 1000, seed=4)
        assert first.counterexample is not None and again.counterexample is not None
        assert first.cases == again.cases < 1000
        assert first.counterexample.input.packet == again.counterexample.input.packet
        # the draw it failed on, found again by hand, and its shrink
        case = sweep._Case(runner, "rx")
        rng = __import__("random").Random("4:rx")
        while True:
            draw = sweep._Draw([sweep._blob(rng, 48, 300) for _ in range(sweep.SWEEP_BATCH)],
                               sweep._blob(rng, 160, 600))
            if isinstance(case.run(draw), sweep.Counterexample):
                break
        shrunk = sweep.shrink(case, draw)
        assert shrunk is not None
        plain, small = shrunk
        assert small.differences and small.input.packet == first.counterexample.input.packet
        # it still disagrees when run on its own
        assert compare(runner.run("rx", small.input), case.interp.run("rx", small.input))
        assert len(plain.frames) == 1 < len(draw.frames)
        set_bytes = sum(1 for blob in [*plain.frames, plain.rest] for b in blob if b)
        assert set_bytes * 4 < sum(1 for blob in [*draw.frames, draw.rest] for b in blob if b)


def test_a_sweep_without_a_defect_runs_exactly_its_cases(kernel: None) -> None:
    from etran.differential.harness import KernelHarness
    from etran.differential.sweep import sweep_hook
    from etran.pipeline import compile_file

    obj = compile_file(ROOT / "tests" / "data" / "timer_slots.py", observe=True)
    with KernelHarness(obj) as runner:
        for hook in [h.name for h in obj.program.hooks]:
            report = sweep_hook(runner, hook, 250, seed=9)
            assert report.cases == 250 and report.counterexample is None, hook


@pytest.mark.parametrize("engine", [[], ["--sweep"]], ids=["hypothesis", "sweep"])
def test_fuzz_programs_without_a_defect_reports_a_clean_campaign(
        kernel: None, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        engine: list[str]) -> None:
    code = main(["fuzz", "--programs", "12", "--seed", "3", "--save", str(tmp_path), *engine])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "12 programs generated" in out and "mismatches: 0" in out
    assert "soundness failures (accepted, refused by the kernel): 0" in out
    assert "budget misses (kernel count above the estimate): 0" in out
    assert not list(tmp_path.glob("*"))


@pytest.mark.parametrize("defect", ["unsigned-compare", "no-sign-extend"])
def test_fuzz_programs_sweep_catches_a_seeded_compiler_defect(
        kernel: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path, defect: str) -> None:
    """The sweep's programs (the campaigns' distribution, larger than hypothesis's) catch
    each defect within a few programs (the third, for seed 1); hypothesis's reach it at the
    nineteenth, then shrink for 16 to 31 s, too long for this tier."""
    _with_defect(monkeypatch, defect)
    code = main(["fuzz", "--programs", "20", "--seed", "1", "--sweep", "--save", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert "MISMATCH in `" in out and "mismatches: 1" in out
    (saved,) = tmp_path.glob("*.json")
    assert json.loads(saved.read_text())["differences"]


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

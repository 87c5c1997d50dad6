"""A bounded differential campaign on every example transport, and the saved counterexamples.

Every hook of every example (timer handlers included) runs on generated
inputs in the kernel and in the interpreter: CASES from hypothesis, then as many from a
seeded random stream (`etran fuzz --sweep`, about twice as fast, with fewer of the
plainest inputs hypothesis favours). A mismatch fails the test with
the counterexample shown, and is saved under tests/property/new/ (ignored by
git and by the tests); moved to tests/property/regressions/ with the fix,
`test_saved_counterexamples_stay_fixed` replays it forever after.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from etran.differential.harness import KernelHarness
from etran.differential.inputs import describe, fuzz_hook, replay, save_counterexample
from etran.differential.sweep import sweep_hook
from etran.pipeline import compile_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
REGRESSIONS = Path(__file__).parent / "regressions"
NEW = Path(__file__).parent / "new"
CASES = int(os.environ.get("ETRAN_FUZZ_CASES", "300"))

pytestmark = [pytest.mark.kernel, pytest.mark.property]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_hooks_agree_on_generated_inputs(kernel: None, path: Path) -> None:
    obj = compile_file(path, observe=True)
    with KernelHarness(obj) as runner:
        for hook in obj.program.hooks:
            for fuzz in (fuzz_hook, sweep_hook):
                report = fuzz(runner, hook.name, CASES, seed=0)
                if report.counterexample is not None:
                    saved = save_counterexample(report.counterexample, NEW)
                    pytest.fail(f"saved to {saved} (move it to {REGRESSIONS} with the fix)\n"
                                + describe(report.counterexample, obj))
                assert report.cases >= CASES // 2, f"{hook.name}: only {report.cases} cases ran"


def test_saved_counterexamples_stay_fixed(kernel: None) -> None:
    failures = []
    for path in sorted(REGRESSIONS.glob("*.json")):
        diffs = replay(path)
        if diffs:
            failures.append(f"{path.name}: " + "; ".join(map(str, diffs)))
    assert not failures, "\n".join(failures)

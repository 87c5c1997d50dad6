"""Realistic transport shapes that once made the checker cry wolf: the estimate must stay
above the kernel's count (soundness) and within a known factor of it (so a change that
makes it pessimistic again is seen), and each must pass `etran check` on its own.

The shapes (tests/corpus/shapes/): an SRPT rank over 8 candidates, a match helper with
early returns, a 1,460-byte payload checksum, a Homa slot lookup followed by a 16x16
rank, a timer handler ranking 16 slots, and examples/tcp_options.py walking 20 options.
When the estimate was a path count per statement, they were refused with estimates of 23
to 2,800 times the kernel's count. The source-level estimate still refuses two of them
(the 20-step option walk: 1.4M for the kernel's 5,708; the timer's handler: 59M, which
the kernel verifies inside `arm` in 30,209): the checker accepts them on the replay's
estimate over the compiled instructions (`etran.analysis.replay`), which is what
`program.budgets` then holds (`replayed`).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from etran.pipeline import check_source, compile_program
from etran.runtime.loader import load_object

ROOT = Path(__file__).resolve().parents[2]
SHAPES = ROOT / "tests" / "corpus" / "shapes"


def source_of(name: str) -> str:
    """A shape's source; the option walk is examples/tcp_options.py with 20 steps."""
    if name == "tcp_options_20":
        walk = (ROOT / "examples" / "tcp_options.py").read_text()
        assert "MAX_OPTIONS = 10\n" in walk
        return walk.replace("MAX_OPTIONS = 10\n", "MAX_OPTIONS = 20\n")
    return (SHAPES / f"{name}.py").read_text()

# Largest estimate / kernel count accepted for each shape today (measured, rounded up).
LOOSENESS: dict[str, int] = {
    "srpt_rank": 3,
    # 7.2 and 4.2 since views at constant offsets lost their barriers: the kernel's count
    # fell (222 -> 125, 19,081 -> 11,725), the source-level estimate did not
    "match_early_return": 8,
    "payload_checksum": 5,
    "tcp_options_20": 3,      # the replay's estimate: 8,562 (1.5x: its margin)
    "homa_slot_rank": 45,
    "timer_rank": 4,          # the replay's, handler included: 67,926 (2.25x)
}
# The shapes the source-level estimate refuses and the replay accepts.
REPLAYED = {"tcp_options_20": "parse_options", "timer_rank": "arm"}

pytestmark = pytest.mark.kernel


def test_every_shape_has_a_bound() -> None:
    assert sorted([p.stem for p in SHAPES.glob("*.py")] + ["tcp_options_20"]) == sorted(LOOSENESS)


@pytest.mark.parametrize("name", sorted(LOOSENESS))
def test_shape_passes_the_check_and_its_estimate_bounds_the_kernel(kernel: None, name: str) -> None:
    bound = LOOSENESS[name]
    program = check_source(source_of(name), f"{name}.py")
    with load_object(compile_program(program).elf) as loaded:
        for hook, prog in loaded.programs.items():
            kernel_count = prog.stats.processed_insns
            estimate = program.budgets[hook].processed
            assert estimate >= kernel_count, f"{hook}: estimate {estimate} < kernel {kernel_count}"
            assert program.budgets[hook].replayed == (REPLAYED.get(name) == hook)
            assert estimate <= bound * kernel_count, \
                f"{hook}: estimate {estimate:,} is {estimate / kernel_count:.1f}x the kernel's " \
                f"{kernel_count:,}"

"""The instruction-level replay (`etran.analysis.replay`), the checker's second opinion on
hooks the source-level estimate refuses: its count against the kernel's on compiled
programs, its bounds (instructions, time), timer callbacks, and the checker using it.

The kernel tests ask for the `kernel` fixture (they skip without one, and fail instead with
ETRAN_REQUIRE_KERNEL=1); the others only compile.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from etran.analysis import replay
from etran.analysis.budget import MAX_PROCESSED
from etran.dsl.diagnostics import DiagnosticError
from etran.ir import tir
from etran.pipeline import check_source, compile_program
from etran.runtime.loader import load_object

ROOT = Path(__file__).resolve().parents[2]
SHAPES = ROOT / "tests" / "corpus" / "shapes"


def walk(steps: int) -> str:
    """examples/tcp_options.py walking `steps` options (the source estimate refuses 20)."""
    source = (ROOT / "examples" / "tcp_options.py").read_text()
    assert "MAX_OPTIONS = 10\n" in source
    return source.replace("MAX_OPTIONS = 10\n", f"MAX_OPTIONS = {steps}\n")


def source_of(name: str) -> str:
    if name.startswith("tcp_options_"):
        return walk(int(name.rsplit("_", 1)[1]))
    if name.startswith("shapes/"):
        return (SHAPES / f"{name.split('/')[1]}.py").read_text()
    return (ROOT / "examples" / f"{name}.py").read_text()


def compiled(name: str) -> tuple[tir.Program, bytes]:
    program = check_source(source_of(name), f"{name.replace('/', '_')}.py", enforce_rules=False)
    return program, compile_program(program).elf


def kernel_counts(elf: bytes) -> dict[str, int]:
    with load_object(elf) as loaded:
        return {h: p.stats.processed_insns for h, p in loaded.programs.items()}


# Programs on which the replay counts what the kernel counts (measured with
# research/estimate_models.py on 6.18): loops whose branches the verifier prunes (the option
# walks, the SRPT ranks, the checksum's views), and two examples without loops.
EXACT = ["tcp_options_10", "tcp_options_20", "shapes/srpt_rank", "shapes/homa_slot_rank",
         "shapes/payload_checksum", "homa_grants", "udp_echo"]


@pytest.mark.kernel
@pytest.mark.parametrize("name", EXACT)
def test_the_replay_counts_what_the_kernel_counts(kernel: None, name: str) -> None:
    """The replayed count within [kernel, 1.25 x kernel] (it is the kernel's on these), so
    its estimate (times MARGIN) is at least the kernel's count."""
    program, elf = compiled(name)
    for hook, count in kernel_counts(elf).items():
        res = replay.explore(elf, hook, maps=replay.map_shapes(program))
        assert res.complete, f"{hook}: stopped ({res.stopped}) at {res.processed}"
        assert count <= res.processed <= 1.25 * count, f"{hook}: replay {res.processed}, kernel {count}"
        assert res.estimate == math.ceil(replay.MARGIN * res.processed) >= count


@pytest.mark.kernel
@pytest.mark.parametrize("name", ["dctcp", "rate_limiter", "reliable_datagram",
                                  "shapes/timer_rank"])
def test_a_hook_that_starts_a_timer_is_replayed_with_its_callback(kernel: None,
                                                                 name: str) -> None:
    """The kernel verifies a @timer handler as a callback inside every program that starts
    its timer; the replay explores the callback after the program's own paths and counts
    it in the program's total, which stays a bound of the kernel's."""
    program, elf = compiled(name)
    counts = kernel_counts(elf)
    handlers = [h.name for h in program.hooks if h.hook == "timer"]
    assert handlers
    started = 0
    for hook, count in counts.items():
        lay = replay.layout(elf, hook)
        callbacks = [f for f in lay.func_start if f.removesuffix("_timer_cb") in handlers]
        started += len(callbacks)
        res = replay.explore(elf, hook, maps=replay.map_shapes(program))
        assert res.complete and res.estimate >= count, \
            f"{hook}: replay {res.processed} (estimate {res.estimate}), kernel {count}"
    assert started


def test_the_replay_stops_at_its_instruction_bound() -> None:
    program, elf = compiled("tcp_options_20")
    res = replay.explore(elf, "parse_options", 1_000, replay.map_shapes(program))
    assert not res.complete and res.stopped == "limit" and res.processed == 1_001
    assert res.estimate > replay.LIMIT


def test_the_replay_stops_at_its_deadline() -> None:
    """The clock is read every 4,096 instructions: a deadline already past stops it there."""
    program, elf = compiled("tcp_options_20")
    res = replay.explore(elf, "parse_options", maps=replay.map_shapes(program),
                         deadline=time.monotonic())
    assert not res.complete and res.stopped == "time" and res.processed == 4_096


def test_a_timer_handler_gets_the_opinion_of_the_hooks_that_start_it() -> None:
    program, elf = compiled("shapes/timer_rank")
    opinions = replay.second_opinion(program, elf, ["rank", "arm"])
    assert opinions["rank"] == opinions["arm"]
    assert opinions["arm"].estimate is not None and opinions["arm"].estimate < MAX_PROCESSED


def test_no_opinion_past_the_time_bound() -> None:
    program, elf = compiled("tcp_options_20")
    opinion = replay.second_opinion(program, elf, ["parse_options"], seconds=0)["parse_options"]
    assert opinion.estimate is None and opinion.why == "more than 1,000,000 (or more than 0 s to tell)"


# ---------------------------------------------------------------- the checker's second opinion
@pytest.mark.parametrize("name", ["tcp_options_20", "tcp_options_80", "shapes/timer_rank"])
def test_the_checker_accepts_what_the_replay_finds_within_the_limit(name: str) -> None:
    """Refused by the source-level estimate, accepted by the checker with the replay's."""
    source_only = check_source(source_of(name), "x.py", enforce_rules=False)
    assert any(e.processed > MAX_PROCESSED for e in source_only.budgets.values())
    program = check_source(source_of(name), "x.py")
    for hook, est in program.budgets.items():
        if source_only.budgets[hook].processed > MAX_PROCESSED:
            assert est.replayed and est.processed <= MAX_PROCESSED, hook
    assert not any(e.replayed for e in source_only.budgets.values())


def test_a_program_within_the_source_estimate_is_not_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    """`etran check` stays as fast as it was on programs the source estimate accepts."""
    import etran.pipeline as pipeline

    def no(program: tir.Program) -> bytes:
        raise AssertionError("compiled for a replay it does not need")
    monkeypatch.setattr(pipeline, "_compiled_for_replay", no)
    program = check_source(walk(10), "walk10.py")
    assert not any(e.replayed for e in program.budgets.values())


def test_the_refusal_says_what_the_replay_found() -> None:
    nested = ROOT / "tests" / "corpus" / "bad" / "23_budget_nested_loops.py"
    with pytest.raises(DiagnosticError) as err:
        check_source(nested.read_text(), str(nested))
    (d,) = err.value.diagnostics
    assert d.rule == "budget"
    assert "; replayed over the compiled instructions, more than 1,000,000 (or more than " \
        "10 s to tell); the kernel stops at 1,000,000" in d.message

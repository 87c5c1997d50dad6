"""Timer starts as the differential harness sees them: a kernel run records the first
MAX_TIMERS starts and counts them all, so a hook that starts timers more often than that
still agrees with the interpreter, and one that starts them a different number of times
does not (found by the program generator: timer starts in a loop)."""

from __future__ import annotations

import pytest

from etran.differential.harness import KernelHarness, compare, run_both
from etran.interp.state import frame_input
from etran.lower.observe import MAX_TIMERS
from etran.pipeline import compile_source

pytestmark = pytest.mark.kernel

SOURCE = """from etran.dsl import *


class Deadline(Struct):
    rto: Timer
    fired: u32


deadlines = ArrayMap(Deadline, max_entries=1)


@timer(Deadline.rto)
def expired(key: u32, d: Deadline) -> None:
    d.fired += 1


@xdp
def arm(pkt: Packet) -> int:
    d = deadlines.get(0)
    if d is None:
        return XDP_PASS
    for i in range(min(u32(pkt.len) - 40, 40)):
        d.rto.start(1000 + u64(i))
    return XDP_DROP
"""


@pytest.mark.parametrize("starts", [0, 3, MAX_TIMERS, MAX_TIMERS + 1, 39])
def test_every_start_is_counted_the_first_ones_recorded(kernel: None, starts: int) -> None:
    compiled = compile_source(SOURCE, "timers.py", observe=True)
    with KernelHarness(compiled) as runner:
        k, i, diffs = run_both(runner, "arm", frame_input(bytes(40 + starts)))
        assert not diffs, diffs
        assert len(k.timers) == min(starts, MAX_TIMERS) and len(i.timers) == starts
        assert (k.timer_count or len(k.timers)) == starts
        assert [t.delay_ns for t in k.timers] == list(range(1000, 1000 + len(k.timers)))
        if starts:   # one start fewer on the interpreter's side is a difference
            i.timers.pop()
            assert [d.what for d in compare(k, i)] == ["timers started"]

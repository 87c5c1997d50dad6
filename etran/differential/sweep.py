"""Long input campaigns without hypothesis's engine: `etran fuzz --sweep`.

Hypothesis decides every draw through its engine, records what it tried and mutates
examples it has seen: good for short runs that must shrink well, but over a long campaign it
costs about as much as the runs themselves (half of `etran fuzz examples/dctcp.py`'s time in
a profile). The inputs are byte-driven already (`etran.testing.strategies.inputs_from_bytes`),
so a seeded random stream of bytes is all a sweep needs: the same builder, the same edge
values, the same inputs for the same seed, and no engine.

A mismatch is shrunk by `shrink`, a small byte shrinker: it drops the other frames of the
batch, cuts each byte string short and zeroes runs of bytes, keeping each change that
still mismatches. Its counterexample is saved and shown exactly as `fuzz_hook`'s.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from etran.differential.harness import KernelHarness, compare
from etran.differential.inputs import Counterexample, FuzzReport, timer_map
from etran.interp.interpreter import Interpreter
from etran.interp.state import frame_input
from etran.testing.strategies import ByteSource, inputs_from_bytes, store_from_bytes, usable_cpus

SHRINK_RUNS = 2000      # runs of both sides a shrink may spend (about a second)
# Frames per draw. A draw's inputs run grouped by CPU, the groups in alternate order from
# one draw to the next: moving the process to another CPU (BPF_PROG_TEST_RUN runs where
# the caller is, and per-CPU maps depend on it) costs more than a run when the other CPU is
# busy, as it is in a two-process campaign.
SWEEP_BATCH = 8


@dataclass
class _Draw:
    """What one step of a sweep ran: the bytes it was built from, and (timers) the entry."""
    frames: list[bytes]     # one per frame (empty for a timer)
    rest: bytes             # maps, clocks and CPUs (a timer: its maps)
    pick: int = 0           # a timer: which of the map's entries fires


def _blob(rng: random.Random, low: int, high: int) -> bytes:
    """Mostly random bytes of a length in [low, high]; one in four is short, so that the
    builder reads zeros past its end (the plainest choices) for the rest of the input."""
    if rng.random() < 0.25:
        return rng.randbytes(rng.randint(0, low))
    return rng.randbytes(rng.randint(low, high))


class _Case:
    """Runs draws of one hook on both sides and says where they disagree."""

    def __init__(self, runner: KernelHarness, hook: str) -> None:
        self.runner = runner
        self.hook = hook
        self.program = runner.program
        self.interp = Interpreter(self.program)
        fn = self.program.hook(hook)
        self.timer = fn.hook == "timer"
        self.tmap = timer_map(self.program, fn) if self.timer else None
        self.cpus = usable_cpus(runner.ncpu)
        self.runs = 0
        self.draws = 0

    def run(self, draw: _Draw, count: Callable[[], bool] | None = None
            ) -> Counterexample | bool | None:
        """The first disagreement among the draw's inputs, None when all agree, False when
        the draw gives nothing to run (a timer map left empty). `count` is called before
        each input; it returns False to stop."""
        if self.timer:
            assert self.tmap is not None
            store = store_from_bytes(ByteSource(draw.rest), self.program, self.runner.ncpu)
            keys = list(store[self.tmap.name].entries)
            if not keys:
                return False
            if count is not None and not count():
                return None
            key = keys[draw.pick % len(keys)]
            inp = frame_input(bytes(64), maps=store)
            self.runs += 1
            k = self.runner.run_timer(self.hook, key, inp)
            i = self.interp.run_timer(self.hook, key, inp)
            diffs = compare(k, i)
            return Counterexample(self.program, self.hook, inp, key, k, i, diffs) if diffs else None
        inputs = inputs_from_bytes(self.program, self.runner.ncpu, draw.frames, draw.rest,
                                   self.cpus)
        self.draws += 1
        inputs.sort(key=lambda inp: inp.cpu, reverse=self.draws % 2 == 0)
        for inp in inputs:
            if count is not None and not count():
                return None
            self.runs += 1
            k, i = self.runner.run(self.hook, inp), self.interp.run(self.hook, inp)
            diffs = compare(k, i)
            if diffs:
                return Counterexample(self.program, self.hook, inp, None, k, i, diffs)
        return None


def sweep_hook(runner: KernelHarness, hook: str, examples: int = 1000, seed: int | None = None,
               progress: Callable[[FuzzReport], None] | None = None) -> FuzzReport:
    """Compare kernel and interpreter on `examples` inputs drawn from a seeded random
    stream (seed 0 when none is given: a sweep is always reproducible)."""
    case = _Case(runner, hook)
    rng = random.Random(f"{seed or 0}:{hook}")
    report = FuzzReport(hook)
    start = time.perf_counter()

    def count() -> bool:
        if report.cases >= examples:
            return False
        report.cases += 1
        if progress is not None and report.cases % 200 == 0:
            report.seconds = time.perf_counter() - start
            progress(report)
        return True

    empty = 0
    while report.cases < examples:
        if case.timer:
            draw = _Draw([], _blob(rng, 64, 600), rng.randrange(1 << 16))
        else:
            draw = _Draw([_blob(rng, 48, 300) for _ in range(SWEEP_BATCH)],
                         _blob(rng, 160, 600))
        found = case.run(draw, count)
        if found is False:
            empty += 1
            if empty > 100 * examples:      # a timer whose map the bytes never fill
                break
            continue
        if found is not None:
            assert isinstance(found, Counterexample)
            smaller = shrink(case, draw)
            report.counterexample = smaller[1] if smaller is not None else found
            break
    report.seconds = time.perf_counter() - start
    return report


def shrink(case: _Case, draw: _Draw, budget: int = SHRINK_RUNS
           ) -> tuple[_Draw, Counterexample] | None:
    """A smaller draw that still disagrees: other frames dropped, then each byte string
    cut short and runs of it zeroed, each change kept when a disagreement remains. Returns
    the smallest draw and its first disagreement (None if even `draw` agrees now)."""
    limit = case.runs + budget

    def fails(d: _Draw) -> Counterexample | None:
        if case.runs >= limit:
            return None
        found = case.run(d)
        return found if isinstance(found, Counterexample) else None

    best = fails(draw)
    if best is None:
        return None
    # one frame is enough when one input disagrees: try each alone
    for i in range(len(draw.frames)):
        if len(draw.frames) == 1:
            break
        alone = _Draw([draw.frames[i]], draw.rest, draw.pick)
        if (found := fails(alone)) is not None:
            draw, best = alone, found
            break
    blobs = [*draw.frames, draw.rest]

    def attempt(b: int, blob: bytes) -> bool:
        """Blob `b` replaced by `blob`, kept if the draw still disagrees. A blob with no
        byte set is not tried: the builder reads it as seeded random bytes, not plain ones
        (`etran.testing.strategies._source`)."""
        nonlocal blobs, best
        if not any(blob):
            return False
        trial = blobs[:b] + [blob] + blobs[b + 1:]
        if (found := fails(_Draw(trial[:-1], trial[-1], draw.pick))) is None:
            return False
        blobs, best = trial, found
        return True

    for b in range(len(blobs)):
        # cut short: the longest prefix kept, by halving what is dropped
        cut = len(blobs[b]) // 2
        while 0 < cut < len(blobs[b]):
            if not attempt(b, blobs[b][:len(blobs[b]) - cut]):
                cut //= 2
        # zero runs, long ones first (a run already zero is skipped)
        size = max(1, len(blobs[b]) // 2)
        while size >= 1:
            for at in range(0, len(blobs[b]), size):
                piece = blobs[b][at:at + size]
                if any(piece):
                    attempt(b, blobs[b][:at] + bytes(len(piece)) + blobs[b][at + size:])
            size //= 2
    return _Draw(blobs[:-1], blobs[-1], draw.pick), best

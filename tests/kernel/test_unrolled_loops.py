"""Unrolled loops in the kernel, against the interpreter (etran.lower.unroll).

tests/data/unrolled_loops.py holds each corner of the unrolling in one hook: indexes past
the array, a start, a step and a negative step, `continue` and `break`, indexes and view
offsets computed from the counter, and a loop that assigns its counter. Generated frames
of every length (a frame shorter than a view makes it None) run in both; the checksum twin
of bench/c must also produce a header that verifies."""
from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from etran.differential.harness import KernelHarness, run_both
from etran.differential.inputs import describe, fuzz_hook
from etran.interp.state import frame_input
from etran.pipeline import compile_file

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.kernel


def test_unrolled_loops_agree_with_the_interpreter(kernel: None) -> None:
    obj = compile_file(ROOT / "tests" / "data" / "unrolled_loops.py", observe=True)
    with KernelHarness(obj) as runner:
        report = fuzz_hook(runner, "corners", 400, seed=7)
        assert report.counterexample is None, describe(report.counterexample, obj)
        assert report.cases >= 200
        # a frame of 16 bytes of 0xFFFF words: the first `break` taken, all views there
        k, _, diffs = run_both(runner, "corners", frame_input(b"\xff" * 16))
        assert not diffs, diffs
        assert k.packet[14:16] != b"\xff\xff"            # the stores at w[7] landed


def _ipv4_frame(rng: random.Random) -> bytes:
    header = bytearray(rng.randbytes(20))
    header[0] = 0x45
    return rng.randbytes(12) + b"\x08\x00" + bytes(header) + rng.randbytes(rng.randrange(30))


def _folds_to_ffff(header: bytes) -> bool:
    s = sum(struct.unpack("!10H", header))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


def test_the_unrolled_checksum_is_right(kernel: None) -> None:
    obj = compile_file(ROOT / "bench" / "c" / "checksum.py", observe=True)
    rng = random.Random(3)
    with KernelHarness(obj) as runner:
        for _ in range(50):
            frame = _ipv4_frame(rng)
            k, _, diffs = run_both(runner, "reflect", frame_input(frame))
            assert not diffs, diffs
            assert k.action == 3                                   # XDP_TX
            assert _folds_to_ffff(k.packet[14:34]), k.packet[14:34].hex()
            assert k.packet[26:30] == frame[30:34] and k.packet[0:6] == frame[6:12]
        report = fuzz_hook(runner, "reflect", 200, seed=11)
        assert report.counterexample is None, describe(report.counterexample, obj)

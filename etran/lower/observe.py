"""Observation probes: how a test build reports what a run did besides its return value.

The kernel's BPF_PROG_TEST_RUN returns the action and the packet, and maps can
be read afterwards; two things a program does leave no trace there: where it
redirected a frame, and which timers it armed. A build with `observe=True`
adds a hidden one-slot array map, `__etran_obs`, and records both into it.
In such a build `Timer.start` records the timer instead of arming it, so a
test run stays deterministic (no callback fires while the maps are read), and
`now_ns()` and `random_u32()` read their values from the same record, where
the runner writes the inputs the interpreter is given. Each @timer handler
also gets an XDP program, `<handler>__fire`, that fires it for the map entry
whose key the runner wrote into the record: timer bodies run on demand in
the kernel, and compare with the interpreter like any hook.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

MAP_NAME = "__etran_obs"
MAX_TIMERS = 8
# u32 redirect_map (index + 1, 0 = none), u32 redirect_key, u32 timer_count, u32 pad,
# then MAX_TIMERS x {u32 map (index + 1), u32 field offset, u64 delay_ns}
HEADER = struct.Struct("<IIII")
TIMER = struct.Struct("<IIQ")
OFF_REDIRECT_MAP = 0
OFF_REDIRECT_KEY = 4
OFF_TIMER_COUNT = 8
OFF_TIMERS = HEADER.size
# Inputs written by the runner: u64 now_ns, u32 random_u32, u32 pad.
INPUTS = struct.Struct("<QII")
OFF_NOW = OFF_TIMERS + MAX_TIMERS * TIMER.size
OFF_RANDOM = OFF_NOW + 8
# The key of the map entry whose timer a `<handler>__fire` program fires.
OFF_KEY = OFF_NOW + INPUTS.size
MAX_KEY = 64
SIZE = OFF_KEY + MAX_KEY
FIRE_SUFFIX = "__fire"


def encode_inputs(now_ns: int, random_u32: int, key: bytes = b"") -> bytes:
    """A fresh record: nothing observed yet, and the run's clock, random value and key."""
    if len(key) > MAX_KEY:
        raise ValueError(f"a timer key of {len(key)} bytes is over {MAX_KEY}")
    raw = bytearray(SIZE)
    INPUTS.pack_into(raw, OFF_NOW, now_ns & (2**64 - 1), random_u32 & 0xFFFFFFFF, 0)
    raw[OFF_KEY:OFF_KEY + len(key)] = key
    return bytes(raw)


@dataclass(frozen=True, slots=True)
class Observation:
    redirect: tuple[int, int] | None                 # (map index, key)
    timers: tuple[tuple[int, int, int], ...]         # (map index, field offset, delay_ns)
    timer_count: int = 0                             # starts in all (the first MAX_TIMERS kept)


def decode(raw: bytes) -> Observation:
    rmap, rkey, count, _ = HEADER.unpack_from(raw, 0)
    timers = []
    for i in range(min(count, MAX_TIMERS)):
        m, off, delay = TIMER.unpack_from(raw, OFF_TIMERS + i * TIMER.size)
        timers.append((m - 1, off, delay))
    return Observation((rmap - 1, rkey) if rmap else None, tuple(timers), count)

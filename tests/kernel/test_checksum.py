"""`pkt.checksum`: the kernel's loop of bpf_xdp_load_bytes + bpf_csum_diff pieces agrees with
the interpreter and with an independent RFC 1071 sum, at every chunk boundary, for odd
lengths, ranges past the packet's end and past the 4,096-byte limit, and any seed."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from etran.differential.harness import KernelHarness, run_both
from etran.interp.state import frame_input
from etran.ir import codec
from etran.ir.semantics import CHECKSUM_CHUNK, CHECKSUM_MAX_BYTES
from etran.pipeline import compile_file
from etran.testing.packets import checksum as rfc1071
from etran.testing.packets import tcp_frame

pytestmark = pytest.mark.kernel

PROGRAM = Path(__file__).resolve().parents[1] / "data" / "checksum.py"


def ask(offset: int, length: int, seed: int, size: int, rng: random.Random) -> bytes:
    body = bytes(rng.getrandbits(8) for _ in range(size - 8))
    return struct.pack("!HHI", offset, length, seed) + body


def folded(data: bytes, seed: int) -> int:
    """The sum `pkt.checksum` promises, from the complemented RFC 1071 checksum."""
    s = ~rfc1071(data) & 0xFFFF
    s += (seed & 0xFFFF) + (seed >> 16)
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def cases() -> list[tuple[int, int, int, int]]:
    """(offset, length, seed, packet size): boundaries of the chunk, the packet and the limit."""
    out = []
    for size in (14, 15, 64, 71, 72, 73, 1514, 3000):
        for offset in (0, 1, 8, 9, size - 1, size, size + 5):
            for length in (0, 1, 2, 3, CHECKSUM_CHUNK - 1, CHECKSUM_CHUNK, CHECKSUM_CHUNK + 1,
                           size, 0xFFF):
                out.append((offset & 0x7FF, length, [0, 0xFFFF, 0xFFFFFFFF, 0x12345678][
                    (offset + length) % 4], size))
    return out


def test_checksums_agree_with_the_interpreter_and_rfc1071(kernel: None) -> None:
    compiled = compile_file(PROGRAM, observe=True)
    rng = random.Random(1071)
    value = compiled.program.map("sums").value
    assert value is not None
    with KernelHarness(compiled) as runner:
        for offset, length, seed, size in cases():
            frame = ask(offset, length, seed, max(size, 14), rng)
            k, _i, diffs = run_both(runner, "sum_range", frame_input(frame))
            assert not diffs, f"{(offset, length, seed, size)}: {diffs}"
            got = codec.decode(value, k.maps["sums"].entries[bytes(4)])
            n = max(0, min(length, len(frame) - offset, CHECKSUM_MAX_BYTES))
            assert got["asked"] == folded(frame[offset:offset + n], seed), (offset, length, size)
            assert got["clipped"] == folded(frame[8:], 0)


def test_a_tcp_segment_checksum_is_one_line(kernel: None) -> None:
    """Summing a real segment with its checksum field in place gives 0xFFFF: the check a
    receiver makes, written with the pseudo-header's sum as the seed."""
    compiled = compile_file(PROGRAM, observe=True)
    value = compiled.program.map("sums").value
    assert value is not None
    segment = tcp_frame(bytes(range(256)) * 5, src="10.111.0.1", dst="10.111.0.2")[14:]
    length = len(segment) - 20
    pseudo = sum(struct.unpack("!4H", bytes([10, 111, 0, 1, 10, 111, 0, 2]))) + 6 + length
    frame = struct.pack("!HHI", 8 + 20, length, pseudo) + segment
    with KernelHarness(compiled) as runner:
        k, _i, diffs = run_both(runner, "sum_range", frame_input(frame))
    assert not diffs
    assert codec.decode(value, k.maps["sums"].entries[bytes(4)])["asked"] == 0xFFFF


def test_incremental_updates_keep_the_header_checksum_right(kernel: None) -> None:
    """csum_replace16/32 after rewriting two fields leave a header whose RFC 1071 checksum
    verifies, in the kernel and the interpreter, for random headers (checksums at every value,
    0x0000 and 0xFFFF included)."""
    compiled = compile_file(PROGRAM, observe=True)
    rng = random.Random(1624)
    with KernelHarness(compiled) as runner:
        for n in range(300):
            header = bytearray(rng.getrandbits(8) for _ in range(20))
            header[0] = 0x45
            header[10:12] = b"\0\0"
            check = rfc1071(bytes(header))
            if n % 3 == 0:  # make the field hold 0x0000 or 0xFFFF, the ones'-complement zeros
                header[10:12] = struct.pack("!H", 0xFFFF if n % 2 else 0)
                header[2:4] = struct.pack("!H", (struct.unpack("!H", header[2:4])[0] + check
                                                 - (0xFFFF if n % 2 else 0)) % 0xFFFF)
                header[10:12] = b"\0\0"
                check = rfc1071(bytes(header))
            header[10:12] = struct.pack("!H", check)
            frame = bytes(14) + bytes(header) + bytes(8)
            k, _i, diffs = run_both(runner, "rewrite", frame_input(frame))
            assert not diffs, diffs
            out = k.packet[14:34]
            assert out[16:20] != header[16:20] or header[12:16] == header[16:20]
            assert rfc1071(out) == 0, f"header {bytes(header).hex()} -> {out.hex()}"

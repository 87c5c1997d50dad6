"""Homa's packets as the library builds and reads them, without a kernel: the receiver's
fast reader of DATA (`wire.data_fields`) says what `wire.parse` says, on well-formed and
damaged frames alike; a message's frames are what the per-packet builder made; the
library's copies of the transport's constants agree with it."""
from __future__ import annotations

import struct
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from etran.homa import wire
from etran.pipeline import check_file
from etran.testing.packets import checksum

ADDR = {"src_mac": bytes.fromhex("02e800000001"), "dst_mac": bytes.fromhex("02e800000002"),
        "src": "10.112.0.1", "dst": "10.112.0.2", "sport": 40000, "dport": 4000}
MESSAGE = bytes(range(256)) * 12                 # 3,072 bytes: three packets
FRAMES = (wire.data_frames(**ADDR, rpc_id=1234, from_client=True, message=MESSAGE)
          + wire.data_frames(**ADDR, rpc_id=98, from_client=False, message=b"x")
          + [wire.control(kind, **ADDR, rpc_id=1234, from_client=False, offset=9, length=3)
             for kind in (wire.GRANT, wire.RESEND, wire.BUSY, wire.ACK)])
# header bytes a damaged frame may carry: the values the readers compare against
SPECIAL = st.sampled_from([0, 1, 0x08, 0x10, 0x11, 0x45, 0x46, 0xFD, 0xFF])


@settings(max_examples=2000, deadline=None, derandomize=True, database=None)
@given(frame=st.sampled_from(FRAMES),
       damage=st.lists(st.tuples(st.integers(0, 63), st.one_of(SPECIAL, st.integers(0, 255))),
                       max_size=3),
       cut=st.one_of(st.none(), st.integers(0, 1500)))
def test_the_fast_data_reader_agrees_with_parse(frame: bytes, damage: list[tuple[int, int]],
                                                cut: int | None) -> None:
    damaged = bytearray(frame if cut is None else frame[:cut])
    for at, value in damage:
        if at < len(damaged):
            damaged[at] = value
    raw = bytes(damaged)
    p, fields = wire.parse(raw), wire.data_fields(raw)
    assert (fields is not None) == (p is not None and p.kind == wire.DATA)
    if fields is not None and p is not None:
        src, dst, sport, dport, flags, rpc_id, length, offset, end = fields
        assert (wire.ip_str(int.from_bytes(src, "big")), wire.ip_str(int.from_bytes(dst, "big")),
                sport, dport, flags, rpc_id, length, offset, raw[wire.DATA_HEADERS:end]) == \
            (p.src, p.dst, p.sport, p.dport, p.flags, p.rpc_id, p.length, p.offset, p.payload)


def test_a_message_s_frames_carry_its_bytes_with_correct_headers() -> None:
    """Every packet: the IPv4 header's checksum holds, its length is the frame's, and the
    payloads put together are the message (the headers are built once per message)."""
    frames = wire.data_frames(**ADDR, rpc_id=1234, from_client=True, message=MESSAGE)
    assert [len(f) for f in frames] == [wire.DATA_HEADERS + n for n in (1400, 1400, 272)]
    for frame in frames:
        assert checksum(frame[14:34]) == 0
        assert struct.unpack_from("!H", frame, 16)[0] + 14 == len(frame)
    parsed = [wire.parse(f) for f in frames]
    assert b"".join(p.payload for p in parsed if p) == MESSAGE
    assert [p.offset for p in parsed if p] == [0, 1400, 2800]
    assert wire.priority(frames[0]) == 0 and wire.priority(FRAMES[-1]) == 7


def test_the_library_s_constants_are_the_data_path_s() -> None:
    """`etran.homa.wire` repeats what the library needs of the transport's constants (it
    cannot import the transport, a program of etran's language): they must not drift."""
    consts = check_file(Path(__file__).resolve().parents[1] / "etran/transports/homa.py"
                        ).constants
    for name in ("DATA", "GRANT", "RESEND", "UNKNOWN", "BUSY", "ACK", "REPAIR", "ARM",
                 "PAYLOAD", "MAX_MESSAGE", "CLIENT_OUT", "SERVER_OUT"):
        assert consts[name] == getattr(wire, name), name
    assert consts["RESEND_TICKS"] * consts["TICK_NS"] == wire.RESEND_MS * 1_000_000

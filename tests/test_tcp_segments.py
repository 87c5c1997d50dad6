"""`etran.tcp.segments`: the options the control plane reads from a SYN and writes into
its own (RFC 9293 option lists, RFC 7323 window scaling)."""
from __future__ import annotations

import pytest

from etran.tcp import segments as sg
from etran.tcp.stack import MAX_RECEIVE_BUFFER, _check_buffer, _wscale_for

MAC_A, MAC_B = bytes(range(6)), bytes(range(6, 12))


def syn(options: bytes) -> sg.Segment:
    frame = sg.build(src_mac=MAC_A, dst_mac=MAC_B, src="10.0.0.1", dst="10.0.0.2", sport=1,
                     dport=2, seq=7, flags=sg.SYN, options=options)
    seg = sg.parse(frame)
    assert seg is not None
    return seg


@pytest.mark.parametrize(("options", "mss", "wscale"), [
    (sg.syn_options(7), sg.MSS, 7),
    (sg.syn_options(None), sg.MSS, None),
    (sg.syn_options(0, mss=536), 536, 0),
    # Linux's SYN: MSS, SACK-permitted, timestamps, NOP, window scale
    (bytes.fromhex("020405b4") + bytes.fromhex("0402") + bytes.fromhex("080a") + bytes(8) +
     bytes.fromhex("01030307"), 1460, 7),
    (bytes.fromhex("01010103"), None, None),              # a window scale cut short
    (bytes.fromhex("00") + sg.syn_options(5), None, None),  # after the end of the list
    (bytes.fromhex("0400") + sg.syn_options(5), None, None),  # a length under 2 stops the walk
])
def test_options_are_read_as_the_list_says(options: bytes, mss: int | None,
                                           wscale: int | None) -> None:
    seg = syn(options)
    assert (seg.mss, seg.wscale) == (mss, wscale)


def test_our_syn_options_stay_aligned() -> None:
    assert sg.syn_options(3) == bytes.fromhex("020405b4" "01030303")
    assert sg.syn_options(None) == bytes.fromhex("020405b4")
    full = sg.syn_options(3, ts=(1, 0), sack=True)
    assert len(full) % 4 == 0 and len(full) <= 40 and full.endswith(bytes.fromhex("01010402"))


@pytest.mark.parametrize(("options", "sack"), [
    (sg.syn_options(7, sack=True), True),
    (sg.syn_options(7), False),
    # Linux's SYN: MSS, SACK-permitted, timestamps, NOP, window scale
    (bytes.fromhex("020405b4" "0402" "080a") + bytes(8) + bytes.fromhex("01030307"), True),
    (bytes.fromhex("0403"), False),                        # a SACK-permitted of the wrong size
    (bytes.fromhex("00") + bytes.fromhex("0402"), False),   # after the end of the list
])
def test_sack_permitted_is_read_where_the_list_has_it(options: bytes, sack: bool) -> None:
    assert syn(options).sack_perm is sack


@pytest.mark.parametrize(("buffer", "shift"), [(1, 0), (65535, 0), (65536, 1),
                                               (256 << 10, 3), (MAX_RECEIVE_BUFFER, 6)])
def test_the_shift_is_the_least_that_says_the_buffer(buffer: int, shift: int) -> None:
    assert _wscale_for(buffer) == shift
    assert buffer >> shift <= 0xFFFF and (shift == 0 or buffer >> (shift - 1) > 0xFFFF)


@pytest.mark.parametrize("buffer", [0, -1, MAX_RECEIVE_BUFFER + 1])
def test_a_receive_buffer_out_of_range_is_refused(buffer: int) -> None:
    with pytest.raises(ValueError, match=r"receive_buffer is .* give 1 to 2,097,152"):
        _check_buffer(buffer)


@pytest.mark.parametrize("options", [
    sg.ts_option(0x01020304, 0xA0B0C0D0),                       # what every segment carries
    bytes.fromhex("0101080a") + bytes(4),                          # a timestamps option cut short
    bytes.fromhex("080a") + bytes.fromhex("01020304a0b0c0d0") + bytes.fromhex("0101"),
    sg.ts_option(5, 6) + bytes.fromhex("0101050a") + bytes(8),     # timestamps and a SACK block
])
def test_a_data_segment_reads_as_the_option_walk_reads_it(options: bytes) -> None:
    """`parse` takes the common layout (two NOPs, then timestamps) without walking the list;
    every layout, that one included, reads as the walk says."""
    frame = sg.build(src_mac=MAC_A, dst_mac=MAC_B, src="10.0.0.1", dst="10.0.0.2", sport=1,
                     dport=2, seq=9, ack=3, flags=sg.ACK | sg.PSH, options=options,
                     payload=b"data")
    seg = sg.parse(frame)
    assert seg is not None
    padded = options + bytes(-len(options) % 4)
    assert (seg.mss, seg.wscale, seg.ts, seg.sack_perm) == sg._options(padded)
    assert (seg.src, seg.dst, seg.seq, seg.ack, seg.payload) == \
        ("10.0.0.1", "10.0.0.2", 9, 3, b"data")
    if options[:4] == bytes.fromhex("0101080a") and len(options) == 12:
        assert seg.ts == (0x01020304, 0xA0B0C0D0)


def test_a_notice_names_its_connection() -> None:
    frame = sg.build(src_mac=MAC_A, dst_mac=MAC_B, src="10.0.0.1", dst="10.111.0.2", sport=40,
                     dport=50, seq=1, ack=77, options=b"")
    frame = frame[:52] + (2).to_bytes(2, "big") + frame[54:]
    note = sg.parse_notice(frame)
    assert note == sg.Notice("10.111.0.2", 50, 40, 2, 77)

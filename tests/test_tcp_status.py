"""`etran status`'s line for a TCP connection (`etran.tcp.status.conn_line`)."""
from __future__ import annotations

from etran.tcp.status import FIELDS, conn_line

KEY = {"peer_ip": 0x0A6F0002, "peer_port": 5001, "local_port": 49152}


def conn(**changes: int) -> dict[str, int]:
    c = dict.fromkeys(FIELDS, 0)
    c.update(state=1, snd_una=0xFFFFFF00, snd_nxt=0x100, snd_wnd=65535, cwnd=10, mss=1448,
             ssthresh=65535, alpha=256, srtt_us=85, rto_ns=10_000_000, bytes_in=20,
             bytes_out=1_234_567, fast_retransmits=2, timeouts=1)
    c.update(changes)
    return c


def test_a_connection_is_one_line_of_what_matters() -> None:
    assert conn_line(KEY, conn(snd_wscale=7, ts_ok=1, sack_ok=1, ecn_ok=1)) == (
        "10.111.0.2:5001 port 49152: established; 512 B in flight, peer's window 65,535 B, "
        "cwnd 10 segments of 1448 B, ssthresh 65,535; alpha 0.250; srtt 85 us, rto 10.0 ms; "
        "20 B in, 1,234,567 B out; 2 fast retransmits, 1 timeouts; "
        "window scale 7/0, timestamps, SACK, ECN")


def test_what_the_handshake_did_not_agree_to_is_left_out() -> None:
    line = conn_line(KEY, conn(state=2))
    assert line.endswith("2 fast retransmits, 1 timeouts") and ": peer closed;" in line
    assert "state 9;" in conn_line(KEY, conn(state=9))

"""What `etran status` says about a host running etran's TCP: its connections, one line each."""

from __future__ import annotations

import ipaddress
from typing import Any

STATES = {1: "established", 2: "peer closed"}
# the fields `conn_line` reads: a map named `conns` without them is another transport's
FIELDS = frozenset({"state", "snd_una", "snd_nxt", "snd_wnd", "cwnd", "mss", "ssthresh",
                    "alpha", "srtt_us", "rto_ns", "bytes_in", "bytes_out", "fast_retransmits",
                    "timeouts", "snd_wscale", "rcv_wscale", "ts_ok", "sack_ok", "ecn_ok"})


def conn_line(key: dict[str, Any], c: dict[str, Any]) -> str:
    """One connection of the data path's `conns` map: who, its state, what is in flight
    against the peer's window and the congestion window, DCTCP's alpha, the RTT and RTO,
    the bytes each way, the recoveries, and what the handshake agreed to."""
    peer = f"{ipaddress.IPv4Address(key['peer_ip'])}:{key['peer_port']}"
    state = STATES.get(c["state"], f"state {c['state']}")
    in_flight = (c["snd_nxt"] - c["snd_una"]) & 0xFFFFFFFF
    parts = [
        f"{peer} port {key['local_port']}: {state}",
        f"{in_flight:,} B in flight, peer's window {c['snd_wnd']:,} B, "
        f"cwnd {c['cwnd']} segments of {c['mss']} B, ssthresh {c['ssthresh']:,}",
        f"alpha {c['alpha'] / 1024:.3f}",
        f"srtt {c['srtt_us']:,} us, rto {c['rto_ns'] / 1e6:.1f} ms",
        f"{c['bytes_in']:,} B in, {c['bytes_out']:,} B out",
        f"{c['fast_retransmits']} fast retransmits, {c['timeouts']} timeouts",
    ]
    agreed = [f"window scale {c['snd_wscale']}/{c['rcv_wscale']}"] if \
        c["snd_wscale"] or c["rcv_wscale"] else []
    agreed += ["timestamps"] * bool(c["ts_ok"]) + ["SACK"] * bool(c["sack_ok"]) + \
        ["ECN"] * bool(c["ecn_ok"])
    if agreed:
        parts.append(", ".join(agreed))
    return "; ".join(parts)

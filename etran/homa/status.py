"""What `etran status` says about a host running Homa: its RPCs, one line each."""

from __future__ import annotations

import ipaddress
from typing import Any

from etran.homa import wire

STATES = {1: "client sending", 2: "client receiving", 3: "server receiving",
          4: "server working", 5: "server sending"}


def rpc_line(key: dict[str, Any], rpc: dict[str, Any]) -> str:
    """One RPC of the data path's `rpcs` map: who, in which state, and the bytes of each
    message: sent and granted of the outgoing one, received, granted and remaining of the
    incoming one; then what is unusual (RESENDs without progress, a client backing off a
    BUSY server, a timer the kernel could not start)."""
    peer = f"{ipaddress.IPv4Address(key['peer'])}:{key['peer_port']}"
    side = STATES.get(rpc["state"], f"state {rpc['state']}")
    parts = [f"rpc {key['id'] & ~1:#x} {peer} port {key['local_port']}: {side}"]
    if rpc["out_length"]:
        parts.append(f"out {rpc['sent']:,}/{rpc['out_length']:,} sent, "
                     f"{rpc['granted']:,} granted")
    if rpc["in_length"]:
        parts.append(f"in {rpc['received']:,}/{rpc['in_length']:,} received, "
                     f"{rpc['in_granted']:,} granted, "
                     f"{rpc['in_length'] - rpc['received']:,} remaining")
    if rpc["resends"]:
        parts.append(f"{rpc['resends']} resends")
    if rpc.get("busy"):
        every = wire.RESEND_MS << rpc["busy"]
        parts.append(f"server busy {rpc['busy']}x (asked every {every} ms)")
    if "armed" in rpc and not rpc["armed"]:
        parts.append("no timer yet (the kernel could not start it; the next packet tries)")
    return "; ".join(parts)

"""Redirects each frame out of the interface in slot `len & 3` of a DevMap, and counts frames."""
from etran.dsl import *


class Count(Struct):
    frames: u64


counts = ArrayMap(Count, max_entries=1)
ports = DevMap(max_entries=4)


@xdp
def forward(pkt: Packet) -> int:
    c = counts.get(0)
    if c is not None:
        c.frames += 1
    return ports.redirect(pkt.len & 3, XDP_PASS)

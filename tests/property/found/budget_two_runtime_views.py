"""Budget under-estimate: the verifier processes 119 instructions, the checker estimates 78.

Two views at runtime offsets, one at the end of the frame, and a test of both: the verifier
keeps the paths apart (each view null or not) longer than the estimate assumes."""
from etran.dsl import *


class Tag(Header):
    count: bool


@xdp
def rx(pkt: Packet) -> int:
    tag = pkt.header(Tag, pkt.len - Tag.size)
    tag2 = pkt.header(Tag, u8(20) & 63)
    if tag2 is None or tag is not None:
        return XDP_REDIRECT
    return XDP_DROP

"""Budget under-estimate: the verifier processes 862 instructions, the checker estimates 258.

A loop bounded by `min(s.last, 16)` with a signed i8 map field and a helper call in the
body: the verifier walks each iteration on several paths (the bound is unknown, and the
helper call clobbers registers so states do not prune), the estimate counts fewer."""
from etran.dsl import *


class Stats(Struct):
    last: i8
    flags: bool


flows = HashMap(u8, Stats, max_entries=4)


@xdp
def rx(pkt: Packet) -> int:
    s = flows.get(2)
    if s is not None:
        for j in range(min(s.last, 16)):
            flows.delete(2)
    return XDP_ABORTED

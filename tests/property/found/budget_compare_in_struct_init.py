"""Budget under-estimate: the verifier processes 95 instructions, the checker estimates 78.

`pkt.len == 0` as a bool field initialiser compiles to a branch; the verifier walks both
paths to the end of the hook (nothing prunes them: the two states differ in the stored
bool), but the estimate counts the code after the comparison once."""
from etran.dsl import *


class Flow(Struct):
    count: bool
    total: u32
    last: u32
    seq: u32
    flags: bool


class Stats(Struct):
    count: u8
    total: be32
    last: Flow


slots = ArrayMap(Stats, max_entries=7)


@xdp
def rx(pkt: Packet) -> int:
    slots.set(pkt.len % 7, Stats(total=pkt.len, last=Flow(count=pkt.len == 0)))
    return XDP_PASS

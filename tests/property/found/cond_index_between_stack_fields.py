"""Checker accepted, kernel refused (found by a 4,000-program campaign, seed 8303): an
index chosen between two fields of a struct on the stack,
`stats.count.count[stats.count.count[0] if b else stats.count.count[2]]`. LLVM merged
the two reads into one at `stats + (b ? 0 : 4)` and computed that address as
`fp-32 | 4`: `R3 bitwise operator |= on pointer prohibited`. The two sides of a
conditional expression that both read memory are now anchored apart
(etran.lower.expressions, x_Cond)."""
from etran.dsl import *


class Flow(Struct):
    count: Array[u16, 3]


class Stats(Struct):
    count: Flow


class Total(Struct):
    hits: u64


totals = ArrayMap(Total, max_entries=4)


def update(pkt: Packet, b: bool, stats: Stats) -> None:
    t = totals.get((stats.count.count[stats.count.count[0] if b else stats.count.count[2]] ^ pkt.rx_queue) & 3)
    if t is not None:
        t.hits += 1


@xdp
def rx(pkt: Packet) -> int:
    update(pkt, u16(1000) != pkt.ifindex, Stats())
    return XDP_PASS

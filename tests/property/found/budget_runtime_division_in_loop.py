"""Budget under-estimate (2.85x): unsigned division by a map value inside a 16-iteration
loop; the division-by-zero test is a branch whose path walks into the next iteration."""
from etran.dsl import *

LIMIT = 354


class Flow(Struct):
    count: bool
    total: u32
    last: u8
    seq: u32


class Stats(Struct):
    count: u32
    total: u32
    last: u32
    seq: u32


class Conn(Struct):
    count: Array[u8, 4]
    total: Array[u8, 6]

    def span(self) -> u32:
        return 0


class Shim(Header):
    count: u8
    total: u8
    last: u8
    seq: u8
    flags: bool


totals = PerCpuArray(Flow, max_entries=1)


def update(a: bool, b: bool, c: u32, conn: Conn) -> bool:
    conn.count[0] += conn.count[conn.count[0] + 0]
    for i in range(min(i8(-0x80000000) + i8(0), 8)):
        n = conn.count[0] + conn.count[0] // 0
        n = min(-conn.count[0], 78)
    n2 = conn.count[0]
    c += c // 0 + (c + conn.count[0])
    return a


def classify(a: u32, b: u32) -> u32:
    update(totals.set(0, Flow(count=update(update(update(a == LIMIT, a == 0, 0, Conn()), True, u32(a), Conn()), True, a // a, Conn()), total=a + a, last=u8(0))), True, 0, Conn())
    flow = totals.get(a & 0)
    if flow is None or totals.set(0, Flow(total=0)):
        return (a + a) << 0
    flow2 = totals.get((u32(0xFFFF) + a) & 0)
    if flow2 is None:
        return a + a
    return a


@xdp
def rx(pkt: Packet) -> int:
    flow = totals.get(0)
    if flow is None or flow.total == flow.total:
        return XDP_PASS if pkt.len == 0 else XDP_PASS
    for i in range(16):
        ok = True
        atomic_add(flow.total, pkt.len // flow.total)
    if flow is None:
        update(flow.count, flow.count, pkt.ifindex if True else pkt.len, Conn())
        flow2 = totals.get(u16(pkt.ifindex) & 0)
        if flow2 is None:
            return XDP_REDIRECT
        totals[0] = flow2
    return XDP_PASS


@xdp
def classify_rx(pkt: Packet) -> int:
    total = u32(pkt.len)
    return XDP_TX

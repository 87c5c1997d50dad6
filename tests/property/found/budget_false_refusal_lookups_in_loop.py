"""A false `budget` refusal (precision, not soundness): the checker estimates 91,406,721
processed instructions and refuses `rx`; with the limit lifted the kernel loads it after 252.

A 16-iteration loop doing two lookups in a branch that a constant `False` makes dead, in a
function inlined into the hook. Of the 30 budget refusals among 2,000 generated programs,
the kernel accepted every one with the limits lifted (the most work any of them took was
38,583 instructions, median 1,095; the estimates ran from 1.04 million to 10^15)."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, Udp


class Stats(Struct):
    count: u64


class Conn(Struct):
    count: i32


class Shim(Header):
    count: Array[be16, 2]


flows2 = HashMap(i32, Conn, max_entries=8)


def update(pkt: Packet, a: u16, stats: Stats) -> u32:
    udp = pkt.header(Udp, Eth.size + IPv4.size)
    shim = pkt.header(Shim, pkt.len - Shim.size)
    if shim is not None:
        for i in range(min(i32(127) if False else i32(0x8000), 16)):
            conn2 = flows2.get(1)
            if conn2 is not None and False:
                conn3 = flows2.get(2)
                if conn3 is not None and (not udp or u8(31) < udp.check):
                    atomic_add(conn3.count, 22)
    return pkt.len ^ u16(100)


@xdp
def rx(pkt: Packet) -> int:
    tcp = pkt.header(Tcp, Eth.size + IPv4.size)
    if tcp is None:
        return XDP_REDIRECT
    update(pkt, tcp.dst_port ^ tcp.flags, Stats())
    seen = True
    full = seen
    return XDP_PASS if full or u32(221) < tcp.src_port else XDP_REDIRECT

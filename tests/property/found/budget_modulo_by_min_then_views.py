"""Budget under-estimate (1.09x at a margin of 1.75): a lookup keyed by a runtime modulo
whose divisor is a `min` of three values, one chosen by a conditional, then two views and a
sequence comparison; raised the margin to 2.0."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Udp, IPPROTO_TCP
class Conn(Struct):
    flags: u64
flows = HashMap(u32, Conn, max_entries=8)
@xdp
def rx(pkt: Packet) -> int:
    return XDP_DROP if not pkt.rx_queue == 152 else XDP_ABORTED
@xdp
def classify_rx(pkt: Packet) -> int:
    size = min(pkt.rx_queue, pkt.len, u32(34) if pkt.ifindex > 15 else pkt.rx_queue)
    udp = pkt.header(Udp, Eth.size + IPv4.size)
    if udp:
        off = pkt.ifindex
        conn3 = flows.get((off % size) & 3)
        if conn3 is not None and seq_before(off, 0xFFFF):
            udp2 = pkt.header(Udp, Eth.size + IPv4.size)
            if udp2 is not None:
                    return XDP_REDIRECT
    return XDP_PASS


from etran.dsl import *
from etran.bpf_templates.headers import Eth
# expect: packet-access at 29:16
# `eth` is the frame's Ethernet view, or a default header on the stack for short frames;
# a runtime index into it would need the packet-end check on one path and not the other.


class Stats(Struct):
    octet: u32
    hits: u64


stats = ArrayMap(Stats, max_entries=1)


@xdp
def count_octet(pkt: Packet) -> int:
    s = stats.get(0)
    if s is None:
        return XDP_PASS
    eth = pkt.header(Eth, 0)
    if eth is None:
        return XDP_PASS
    if pkt.len < 60:
        eth = Eth(proto=0)
    octet = s.octet
    if octet >= 6:
        return XDP_PASS
    if eth.dst[octet] == 0xFF:
        s.hits += 1
    return XDP_PASS

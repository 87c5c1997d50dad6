from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, ECN_CE
# expect: type at 21:17
# Adding a bool to the mark counter: a bool is not an integer.


class Stats(Struct):
    marked: u32


stats = PerCpuArray(Stats, max_entries=1)


@xdp
def count_ce(pkt: Packet) -> int:
    ip = pkt.header(IPv4, Eth.size)
    s = stats.get(0)
    if ip is None or s is None:
        return XDP_PASS
    is_ce = ip.ecn() == ECN_CE
    s.marked += is_ce
    return XDP_PASS

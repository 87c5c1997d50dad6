"""Budget under-estimate: the verifier processes 162 instructions, the checker estimates 109.

`eth` is tested for None twice, with a helper call on one arm in between: the two paths
(eth present / absent) stay apart through the rest of the hook in the verifier."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp


class Entry(Struct):
    n: u32


flows = HashMap(u32, Entry, max_entries=8)


@xdp
def rx(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is not None:
        flows.delete(3)
    tcp = pkt.header(Tcp, Eth.size + IPv4.size)
    if tcp is None:
        return XDP_DROP
    return XDP_TX if eth is not None and eth.dst[0] >= eth.dst[4] else XDP_DROP

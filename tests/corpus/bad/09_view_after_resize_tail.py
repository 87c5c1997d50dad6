from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4
# expect: view-after-resize at 14:20
# Trimming the frame check sequence moves the packet; the IPv4 view taken before is stale.


@xdp
def trim_fcs(pkt: Packet) -> int:
    ip = pkt.header(IPv4, Eth.size)
    if ip is None:
        return XDP_PASS
    if not pkt.resize_tail(-4):
        return XDP_DROP
    ip.total_len = ip.total_len - 4
    return XDP_PASS

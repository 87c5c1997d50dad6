from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, IPPROTO_TCP, IPPROTO_UDP
# expect: unassigned at 16:8
# `action` is only assigned for TCP and UDP; other protocols read it unassigned.


@xdp
def classify(pkt: Packet) -> int:
    ip = pkt.header(IPv4, Eth.size)
    if ip is None:
        return XDP_PASS
    if ip.protocol == IPPROTO_TCP:
        action = XDP_PASS
    elif ip.protocol == IPPROTO_UDP:
        action = XDP_DROP
    if action == XDP_DROP:
        return XDP_DROP
    return XDP_PASS

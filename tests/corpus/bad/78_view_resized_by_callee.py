from etran.dsl import *
from etran.bpf_templates.headers import Eth
# expect: view-after-resize at 9:9
# `push_vlan` grows the packet, then writes through the Ethernet view it was given.


def push_vlan(pkt: Packet, eth: Eth) -> None:
    if pkt.resize_head(4):
        eth.proto = 0x8100


@egress
def tag(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None:
        return XDP_PASS
    push_vlan(pkt, eth)
    return XDP_TX

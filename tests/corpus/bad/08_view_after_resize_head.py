from etran.dsl import *
from etran.bpf_templates.headers import Eth
# expect: view-after-resize at 19:5
# The Ethernet view is taken before `resize_head`; writing through it afterwards is stale.


class Tag(Header):
    magic: be16
    flow: be16


@egress
def push_tag(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None:
        return XDP_PASS
    if not pkt.resize_head(Tag.size):
        return XDP_DROP
    eth.proto = 0x88B5
    return XDP_TX

from etran.dsl import *
from etran.bpf_templates.headers import Eth
# expect: unsupported-syntax at 12:22
# Copying the destination MAC with a slice.


@xdp
def rx(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None:
        return XDP_PASS
    prefix = eth.dst[0:3]
    return XDP_PASS

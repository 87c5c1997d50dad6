from etran.dsl import *
# expect: packet-access at 8:13
# C-style access to the packet's start pointer.


@xdp
def peek(pkt: Packet) -> int:
    start = pkt.data
    return XDP_PASS

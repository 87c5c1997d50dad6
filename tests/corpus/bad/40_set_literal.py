from etran.dsl import *
# expect: unsupported-syntax at 8:15
# A set of blocked queues.


@xdp
def rx(pkt: Packet) -> int:
    blocked = {3, 7}
    return XDP_PASS

from etran.dsl import *
# expect: unsupported-syntax at 8:16
# A lambda to compute the ACK number.


@xdp
def rx(pkt: Packet) -> int:
    next_ack = lambda seq: seq + 1
    return XDP_PASS

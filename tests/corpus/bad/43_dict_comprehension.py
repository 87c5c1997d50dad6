from etran.dsl import *
# expect: unsupported-syntax at 8:15
# Building a per-queue credit table with a dict comprehension.


@xdp
def rx(pkt: Packet) -> int:
    credits = {q: 16 for q in range(4)}
    return XDP_PASS

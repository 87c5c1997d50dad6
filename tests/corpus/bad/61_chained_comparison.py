from etran.dsl import *
# expect: unsupported-syntax at 8:8
# A range test written as a chained comparison.


@xdp
def rx(pkt: Packet) -> int:
    if 64 <= pkt.len <= 1518:
        return XDP_PASS
    return XDP_DROP

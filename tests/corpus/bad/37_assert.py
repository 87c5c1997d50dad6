from etran.dsl import *
# expect: unsupported-syntax at 8:5
# Asserting a minimum frame length.


@xdp
def rx(pkt: Packet) -> int:
    assert pkt.len >= 14
    return XDP_PASS

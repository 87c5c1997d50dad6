from etran.dsl import *
# expect: unsupported-syntax at 9:9
# Raising on a malformed frame.


@xdp
def rx(pkt: Packet) -> int:
    if pkt.len < 14:
        raise ValueError
    return XDP_PASS

from etran.dsl import *
# expect: hook-return at 9:16
# 7 is not an XDP action (they are 0..4).


@xdp
def police(pkt: Packet) -> int:
    if pkt.len > 1500:
        return 7
    return XDP_PASS

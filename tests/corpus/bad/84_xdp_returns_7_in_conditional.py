from etran.dsl import *
# expect: hook-return at 11:44
# 7 is not an XDP action, even as one branch of a conditional expression (the kernel
# returned 7 for long frames).

MTU = 1500


@xdp
def police(pkt: Packet) -> int:
    return XDP_PASS if pkt.len <= MTU else 7

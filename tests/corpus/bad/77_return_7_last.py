from etran.dsl import *
# expect: hook-return at 10:12
# 7 is not an XDP action; here the bad `return` is the last statement of the hook.


@xdp
def police(pkt: Packet) -> int:
    if pkt.len > 1500:
        return XDP_DROP
    return 7

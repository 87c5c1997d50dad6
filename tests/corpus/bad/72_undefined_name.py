from etran.dsl import *
# expect: name at 10:18
# A misspelled constant.

MSS = 1448


@xdp
def rx(pkt: Packet) -> int:
    if pkt.len > MMS:
        return XDP_DROP
    return XDP_PASS

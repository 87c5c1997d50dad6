from etran.dsl import *
# expect: unsupported-syntax at 13:15
# Forwarding arguments with `*`.


def window(cwnd: u32, rwnd: u32) -> u32:
    return min(cwnd, rwnd)


@xdp
def rx(pkt: Packet) -> int:
    limits = pkt.len
    if window(*limits) == 0:
        return XDP_DROP
    return XDP_PASS

from etran.dsl import *
# expect: unsupported-syntax at 7:5
# `nonlocal` to update the caller's window.


def grow(cwnd: u32) -> u32:
    nonlocal cwnd
    cwnd += 1448
    return cwnd


@xdp
def rx(pkt: Packet) -> int:
    if grow(pkt.len) > 65535:
        return XDP_DROP
    return XDP_PASS

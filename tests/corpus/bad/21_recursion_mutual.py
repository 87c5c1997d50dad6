from etran.dsl import *
# expect: recursion at 9:12
# `ack_loss` and `handle_loss` call each other.


def handle_loss(cwnd: u32, losses: u32) -> u32:
    if losses == 0:
        return cwnd
    return ack_loss(cwnd // 2, losses - 1)


def ack_loss(cwnd: u32, losses: u32) -> u32:
    if cwnd <= 1448:
        return 1448
    return handle_loss(cwnd, losses)


@xdp
def rx(pkt: Packet) -> int:
    if handle_loss(65535, 2) < 4096:
        return XDP_DROP
    return XDP_PASS

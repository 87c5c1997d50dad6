from etran.dsl import *
# expect: missing-return at 6:5
# `window_full` returns on the True path only.


def window_full(inflight: u32, cwnd: u32) -> bool:
    if inflight >= cwnd:
        return True


@egress
def tx(pkt: Packet) -> int:
    if window_full(pkt.len, 14480):
        return XDP_DROP
    return XDP_TX

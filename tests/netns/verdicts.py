"""Test transport for the hook runtime's verdicts: an @egress whose verdict is the first
payload byte of a UDP frame (0 send, 1 drop, 2 back to the application, 3 pass to the host)."""
from etran.dsl import *


class Choice(Header):
    verdict: u8


xsks = XskMap(max_entries=4)


@egress
def choose(pkt: Packet) -> int:
    c = pkt.header(Choice, 42)
    if c is None:
        return XDP_DROP
    if c.verdict == 0:
        return XDP_TX
    if c.verdict == 2:
        return xsks.redirect(pkt.rx_queue, XDP_DROP)
    if c.verdict == 3:
        return XDP_PASS
    return XDP_DROP

"""Verifier rejection of a checker-accepted program: "R6 invalid mem access 'scalar'".

`ip.total_len = grow(pkt)`: the right-hand side calls a function that resizes the packet,
then the store goes through `ip`, a view taken before the resize. The checker resolves the
target before checking the value, so `view-after-resize` does not fire; the verifier has
forgotten the packet pointer by the time of the store. (`x = grow(pkt)` followed by
`ip.total_len = x` is correctly refused.)"""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4


def grow(pkt: Packet) -> u16:
    pkt.resize_tail(16)
    return 0


@xdp
def rx(pkt: Packet) -> int:
    ip = pkt.header(IPv4, Eth.size)
    if ip is not None:
        ip.total_len = grow(pkt)
    return XDP_DROP

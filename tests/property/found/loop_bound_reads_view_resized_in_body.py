"""Verifier rejection of a checker-accepted program: "R? invalid mem access 'scalar'".

The bound of `range(min(eth.proto, 8))` is evaluated again before every iteration (in the
kernel and in the interpreter), and the body resizes the packet, so from the second
iteration on the bound reads a stale view. The checker checks the bound once, before the
loop, where `eth` is still valid; it should check it with the flow at the loop head (as it
does the body), i.e. refuse it as `view-after-resize`."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth


@xdp
def rx(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None:
        return XDP_ABORTED
    for j in range(min(eth.proto, 8)):
        pkt.resize_tail(-1)
    return XDP_PASS

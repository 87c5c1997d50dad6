"""Verifier rejection of a checker-accepted program: "R? invalid mem access 'scalar'".

The bound of `range(min(eth.proto, 8))` used to be evaluated again before every
iteration, so from the second iteration on it read a view the body had invalidated by
resizing the packet. The bound is now evaluated once, before the first iteration, as
Python evaluates `range(...)`: the program is valid, loads, and agrees with the
interpreter."""
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

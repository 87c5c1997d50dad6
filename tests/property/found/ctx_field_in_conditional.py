"""Verifier rejection of a checker-accepted program: "dereference of modified ctx ptr R1
off=16 disallowed".

`pkt.ifindex if c else pkt.rx_queue`: LLVM turns the choice between two loads from the XDP
context into one load from a computed context address; the verifier only allows context
loads at constant offsets from the unmodified context pointer."""
from etran.dsl import *


@xdp
def rx(pkt: Packet) -> int:
    x = pkt.ifindex if pkt.len > 100 else pkt.rx_queue
    if x == 3:
        return XDP_DROP
    return XDP_PASS

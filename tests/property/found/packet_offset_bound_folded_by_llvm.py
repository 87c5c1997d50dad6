"""Verifier rejection of a checker-accepted program: "math between pkt pointer and register
with unbounded min value is not allowed".

The view offset `(7 % pkt.len) & 63`: LLVM knows `7 % n` is at most 7 and drops the `& 63`,
and the verifier, which does not bound `%`, sees an unbounded offset added to the packet
pointer. The same as index_bound_folded_by_llvm.py (fixed for array indexes), for view offsets."""
from etran.dsl import *


class Shim(Header):
    count: be16


@xdp
def rx(pkt: Packet) -> int:
    shim = pkt.header(Shim, (7 % pkt.len) & 63)
    if shim is None:
        return XDP_PASS
    return XDP_REDIRECT

"""Budget under-estimate (found and shrunk by test_progen): the verifier processes 531
instructions, the checker estimates 519.

A 16-iteration loop storing through a runtime index (`shim.count`, 0 here but not a
constant) into an array of a Header built on the stack: the bounds check and the stack
write cost the verifier more per iteration than the estimate charges."""
from etran.dsl import *


class Shim(Header):
    count: be16
    total: u8
    last: Array[u8, 2]
    seq: u8


@xdp
def rx(pkt: Packet) -> int:
    shim = Shim(total=u8(0) + 0)
    for i in range(16):
        ok = True
        shim.last[shim.count] = 0
    return XDP_PASS

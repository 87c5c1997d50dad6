"""Verifier rejection of a checker-accepted program: "infinite loop detected".

The loop looks for the first `j` with `63 - b == j` and has no store of its own.
LLVM's loop predication (IndVarSimplify) computed both of its exits before the loop as
unsigned minimums and left the loop itself with no exit, reached only when those minimums
disagree, which they never do. The verifier cannot relate the minimums: it walked into
the exitless loop (`goto -1`) and refused the program. Loop predication is now turned
off (etran.backend.emit.LLVM_OPTIONS). Found by the campaign of seed 20261208 (program
14106), where the bound was `min(b % b, 4)`."""
from etran.dsl import *


class Conn(Struct):
    count: i32
    last: i32


slots = ArrayMap(Conn, max_entries=2)


@xdp
def rx(pkt: Packet) -> int:
    c = slots.get(0)
    if c is None:
        return XDP_PASS
    b = c.last
    for j in range(min(c.count, 4)):
        if 63 - b == i16(j):
            d = slots.get(1)
            if d is not None:
                d.count += 1
            return XDP_DROP
    return XDP_PASS

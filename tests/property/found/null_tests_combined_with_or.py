"""Verifier rejection of a checker-accepted program: "R7 pointer |= pointer prohibited".

`a is not None or b is not None` on two map lookups: LLVM folds the two null tests into
one test of `a | b`, bitwise arithmetic on pointers, which the verifier forbids. The null
tests need to stay separate comparisons (an optimisation barrier on the pointers)."""
from etran.dsl import *


class Conn(Struct):
    last: u8


slots = ArrayMap(Conn, max_entries=2)


@xdp
def rx(pkt: Packet) -> int:
    a = slots.get(0)
    b = slots.get(1)
    if a is not None or b is not None:
        return XDP_DROP
    return XDP_PASS

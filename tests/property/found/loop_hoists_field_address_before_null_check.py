"""Verifier rejection of a checker-accepted program: "R8 pointer arithmetic on
map_value_or_null prohibited, null-check it first".

In the loop, `flow.total = flow2.total` only runs after `if flow is None: continue`, but LLVM
hoists the address `flow + 8` (loop-invariant) above the null test, and the verifier refuses
arithmetic on a pointer that may be null. Lookup results need to stay opaque until tested
(or the address be recomputed after the test)."""
from etran.dsl import *


class Flow(Struct):
    count: i64
    total: Array[be16, 5]


class Stats(Struct):
    n: u32


flows = HashMap(u8, Flow, max_entries=64)
other = HashMap(u8, Stats, max_entries=8)


@xdp
def rx(pkt: Packet) -> int:
    flow = flows.get(1)
    flow2 = flows.get(2)
    if flow2 is not None:
        for i in range(16):
            other.delete(2)
            if flow is None:
                continue
            flow.total = flow2.total
    return XDP_ABORTED

"""Verifier rejection of a checker-accepted program: "math between map_value pointer and
register with unbounded min value is not allowed".

The array index `2 % flow.total` is always below 3, so LLVM drops the run-time index check;
the verifier does not know the range of a `%` result and refuses the unchecked pointer
arithmetic. The index check (or a mask) must survive optimisation: a value the verifier can
bound, not one LLVM can."""
from etran.dsl import *


class Flow(Struct):
    total: u64
    flags: Array[u16, 3]


flows = ArrayMap(Flow, max_entries=1)


@xdp
def rx(pkt: Packet) -> int:
    flow = flows.get(0)
    if flow is None:
        return XDP_ABORTED
    flow.total = flow.flags[2 % flow.total]
    return XDP_PASS

"""Budget under-estimate (1.01x at a margin of 1.75): signed division by the result of
another signed division, its dividend chosen by a conditional: the fix-up branches of the
two divisions multiply; raised the margin to 2.0."""
from etran.dsl import *
class Flow(Struct):
    count: bool
    total: i16
    seq: i8
flows = HashMap(u32, Flow, max_entries=64)
@xdp
def rx(pkt: Packet) -> int:
    return XDP_ABORTED if seq_after(pkt.ifindex, 247) else XDP_TX
@xdp
def classify_rx(pkt: Packet) -> int:
    flow2 = flows.get(3)
    if flow2 is None or flow2.total > flow2.seq:
        return XDP_REDIRECT
    flow2.total += (flow2.total if flow2.count else flow2.seq) // (flow2.seq // 78)
    return XDP_ABORTED


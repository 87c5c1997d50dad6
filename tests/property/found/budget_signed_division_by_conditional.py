"""Budget under-estimate: the verifier processes 155 instructions, the checker estimates 109.

`flow.seq //= i16(pkt.len if flow is not None else flow.count)`: signed division by a
runtime value, whose divisor is a conditional on a None test of the (checked) reference;
the zero-divisor and sign branches of the division run on both paths of the conditional."""
from etran.dsl import *


class Flow(Struct):
    count: be16
    seq: i32


slots = ArrayMap(Flow, max_entries=8)


@xdp
def rx(pkt: Packet) -> int:
    flow = slots.get(6)
    if flow is not None:
        flow.seq //= i16(pkt.len if flow is not None else flow.count)
    return XDP_ABORTED

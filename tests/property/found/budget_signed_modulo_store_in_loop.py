"""Budget under-estimate (1.31x): `item.flags %= 215` on a signed field in a loop; the
floor-modulo sign fix-ups are branches, which compound assignment was not charged for."""
from etran.dsl import *
class Flow(Struct):
    count: Array[u32, 5]
    seq: u32
    flags: i64
pending = Queue(Flow, max_entries=2)
@xdp
def rx(pkt: Packet) -> int:
    item = pending.pop()
    if item is None or seq_after_eq(item.seq, item.count[3]):
        return XDP_REDIRECT if pkt.len > u8(91) else XDP_PASS
    for i in range(1, 4):
        item.flags %= 215
    return XDP_PASS


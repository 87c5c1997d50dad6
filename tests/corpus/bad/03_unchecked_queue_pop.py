from etran.dsl import *
# expect: none-check at 25:18
# `pop()` returns None when the retransmit queue is empty; `seg.seq` is read unchecked.


class Segment(Struct):
    seq: u32
    length: u32


class Stats(Struct):
    next_seq: u32


retransmits = Queue(Segment, max_entries=64)
stats = ArrayMap(Stats, max_entries=1)


@gen
def resend(pkt: Packet) -> int:
    seg = retransmits.pop()
    s = stats.get(0)
    if s is None:
        return XDP_DROP
    s.next_seq = seg.seq + seg.length
    return XDP_TX

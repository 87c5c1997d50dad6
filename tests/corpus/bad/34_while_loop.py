from etran.dsl import *
# expect: unsupported-syntax at 16:5
# Draining the retransmit queue with `while`: the verifier needs a visible bound.


class Segment(Struct):
    seq: u32


retransmits = Queue(Segment, max_entries=64)


@gen
def drain(pkt: Packet) -> int:
    sent: u32 = 0
    while sent < 64:
        seg = retransmits.pop()
        if seg is None:
            break
        sent += 1
    return XDP_DROP

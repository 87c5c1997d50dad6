"""A timer per array slot: `arm` starts slot 1's timer, `tick` counts into the slot."""
from etran.dsl import *


class Slot(Struct):
    delta: i32
    fired: u32
    t: Timer


slots = ArrayMap(Slot, max_entries=4)


@xdp
def arm(pkt: Packet) -> int:
    s = slots.get(1)
    if s is None:
        return XDP_PASS
    s.t.start(1000)
    return XDP_PASS


@timer(Slot.t)
def tick(key: u32, s: Slot) -> None:
    if s.delta < 0:
        s.fired += key + 1
    else:
        s.fired += 100

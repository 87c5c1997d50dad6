from etran.dsl import *
# expect: loop-bound at 19:20
# Resuming a scan from a runtime position: the start of `range` must be a constant.


class Ring(Struct):
    head: u32
    slots: Array[u32, 64]


rings = ArrayMap(Ring, max_entries=1)


@xdp
def scan(pkt: Packet) -> int:
    r = rings.get(0)
    if r is None:
        return XDP_PASS
    for i in range(r.head, 64):
        r.slots[i] = 0
    return XDP_PASS

"""A timer that ranks 16 slots by bytes remaining (SRPT) and trims the four first: the
kernel verifies the handler as a callback inside `arm`, the hook that starts the timer (a
@timer handler has no program of its own), so `arm`'s count is mostly the handler's."""
from etran.dsl import *

SLOTS = 16
TICK_NS = 1_000_000


class Table(Struct):
    remaining: Array[u32, 16]
    active: Array[bool, 16]
    granted: Array[u8, 16]
    armed: bool
    tick: Timer


table = ArrayMap(Table, max_entries=1)


@xdp
def arm(pkt: Packet) -> int:
    t = table.get(0)
    if t is None:
        return XDP_PASS
    if not t.armed:
        t.armed = True
        t.tick.start(TICK_NS)
    return XDP_PASS


@timer(Table.tick)
def rank(key: u32, t: Table) -> None:
    for i in range(SLOTS):
        r: u8 = 0
        for j in range(SLOTS):
            if t.active[j] and t.remaining[j] < t.remaining[i]:
                r += 1
        t.granted[i] = r
    for i in range(SLOTS):
        if t.active[i] and t.granted[i] < 4:
            t.remaining[i] -= min(t.remaining[i], 1500)
    t.tick.start(TICK_NS)

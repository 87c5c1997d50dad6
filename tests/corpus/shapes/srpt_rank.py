"""SRPT ranking of 8 candidate messages: a nested 8x8 loop over a map value's arrays.

Each slot's rank is the number of slots with fewer bytes remaining (ties broken by
position), the shape a Homa grant scheduler computes before granting the top ones.
"""
from etran.dsl import *

SLOTS = 8


class Candidates(Struct):
    remaining: Array[u32, 8]
    rpc: Array[u64, 8]
    rank: Array[u8, 8]


candidates = ArrayMap(Candidates, max_entries=1)


@xdp
def rank(pkt: Packet) -> int:
    c = candidates.get(0)
    if c is None:
        return XDP_PASS
    for i in range(SLOTS):
        r: u8 = 0
        for j in range(SLOTS):
            if c.remaining[j] < c.remaining[i] or (c.remaining[j] == c.remaining[i] and j < i):
                r += 1
        c.rank[i] = r
    return XDP_PASS

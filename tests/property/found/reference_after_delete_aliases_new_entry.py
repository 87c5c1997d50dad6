"""Kernel/interpreter mismatch: writing through a reference to an entry that was deleted.

`v` refers to `flows[0]`; after `flows.delete(0)` the kernel puts the element back on the
map's free list, and the next insertion (`flows.set(2, ...)`) reuses it, so `v.n = 7` lands in
the new entry for key 2 (the kernel ends with flows[2].n == 7). The interpreter treats the
deleted entry as detached memory (flows[2].n == 1). Either the checker should refuse uses of a
map reference after an update/delete of that map (as it does for views after a resize), or
the language should document such writes as unspecified (and tests avoid them).
Found with LruHashMap, where the reuse depends on the LRU lists; with a HashMap it is
deterministic. Start with `flows[0] = {n: 5}`."""
from etran.dsl import *


class V(Struct):
    n: u32


flows = HashMap(u32, V, max_entries=8)


@xdp
def rx(pkt: Packet) -> int:
    v = flows.get(0)
    if v is None:
        return XDP_PASS
    flows.delete(0)
    flows.set(2, V(n=1))
    v.n = 7
    return XDP_PASS

"""Kernel/interpreter mismatch: a reference from `m.get(k)` after `m.set(k, ...)` on a hash map.

The kernel's hash maps (HashMap, LruHashMap, PerCpuHashMap) replace an existing entry by
linking in a new element: a reference taken before the update still points at the old
element, so writes through it no longer reach the map. The interpreter updates the entry in
place, so the write lands. With `flows[1] = {n: 1}`: the kernel ends with n == 5, the
interpreter with n == 7. (ArrayMap slots are updated in place in both.)"""
from etran.dsl import *


class V(Struct):
    n: u32


flows = HashMap(u32, V, max_entries=8)


@xdp
def rx(pkt: Packet) -> int:
    v = flows.get(1)
    if v is None:
        return XDP_PASS
    flows.set(1, V(n=5))
    v.n = 7
    return XDP_PASS

"""Kernel/interpreter mismatch the map-ref-after-update rule misses: the reference is a parameter.

`reuse(v)` gets a reference to `flows[0]`, deletes that entry and inserts another, then
writes through `v`. The rule that refuses `v.n = 7` after `flows.delete(0)` in the hook
(reference_after_delete_aliases_new_entry.py) does not follow the reference into the
callee, where `v` is a plain struct parameter. The kernel reuses the freed element for key 2
(flows[2].n == 7), the interpreter does not (flows[2].n == 1). Start with `flows[0] = {n: 5}`.
(A callee that only replaces the entry it was given agrees today: both sides lose the write.)"""
from etran.dsl import *


class V(Struct):
    n: u32


flows = HashMap(u32, V, max_entries=8)


def reuse(v: V) -> None:
    flows.delete(0)
    flows.set(2, V(n=1))
    v.n = 7


@xdp
def rx(pkt: Packet) -> int:
    v = flows.get(0)
    if v is None:
        return XDP_PASS
    reuse(v)
    return XDP_PASS

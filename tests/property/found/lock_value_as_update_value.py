"""Verifier rejection of a checker-accepted program: "bpf_spin_lock cannot be accessed
directly by load/store".

A map value holding a SpinLock is passed as the value of `set` (the same holds for
`insert`/`replace`): the helper reads the whole value, lock included, which the verifier
forbids. The checker should refuse it (or the lowering copy the value without the lock)."""
from etran.dsl import *


class Conn(Struct):
    lock: SpinLock
    count: u32


slots = ArrayMap(Conn, max_entries=6)


@xdp
def rx(pkt: Packet) -> int:
    entry = slots.get(0)
    if entry is None:
        return XDP_PASS
    slots.set(1, entry)
    return XDP_PASS

"""Verifier rejection of a checker-accepted program: "The sequence of 8193 jumps is too
complex" (the checker estimates ~2,800 processed instructions).

`range(min(u8(3) >> pkt.len, 16))`: LLVM knows `3 >> n` is at most 3 and drops the `min`
with 16; the verifier does not bound a shift by an unknown amount, so it sees a loop whose
bound it cannot establish and walks it until the jump-history limit. The loop bound's
clamp must survive optimisation (the same family as index_bound_folded_by_llvm.py)."""
from etran.dsl import *


class Entry(Struct):
    count: u64


slots = ArrayMap(Entry, max_entries=3)


@xdp
def rx(pkt: Packet) -> int:
    entry = slots.get(1)
    if entry is not None:
        for k in range(min(u8(3) >> pkt.len, 16)):
            size = (entry.count >> k) + cpu_id()
    return XDP_TX

"""Verifier rejection of a checker-accepted program: "R3 32-bit pointer arithmetic prohibited".

`pkt.len` is `data_end - data`; subtracting another runtime u32 lets LLVM reassociate the
expression into 32-bit subtractions applied to the packet pointers themselves
(`pkt.len - 3`, `pkt.len + pkt.rx_queue` and `i32(pkt.len)` load fine)."""
from etran.dsl import *


@xdp
def rx(pkt: Packet) -> int:
    if pkt.len - pkt.rx_queue > 5:
        return XDP_DROP
    return XDP_PASS


class Stats(Struct):
    total: i32


totals = PerCpuArray(Stats, max_entries=4)


@xdp
def inverted(pkt: Packet) -> int:
    # The same with `~pkt.len` as an array index: "R1 32-bit pointer arithmetic prohibited".
    stats = totals.get(~pkt.len)
    if stats is None:
        return XDP_PASS
    return XDP_DROP

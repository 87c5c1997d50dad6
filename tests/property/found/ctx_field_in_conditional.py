"""Verifier rejection of a checker-accepted program: "dereference of modified ctx ptr R1
off=16 disallowed".

`pkt.ifindex if c else pkt.rx_queue`: LLVM turns the choice between two loads from the XDP
context into one load from a computed context address; the verifier only allows context
loads at constant offsets from the unmodified context pointer."""
from etran.dsl import *


@xdp
def rx(pkt: Packet) -> int:
    x = pkt.ifindex if pkt.len > 100 else pkt.rx_queue
    if x == 3:
        return XDP_DROP
    return XDP_PASS


class Entry(Struct):
    n: u32


flows = HashMap(u32, Entry, max_entries=64)


@xdp
def after_resize(pkt: Packet) -> int:
    # The same root cause, found by test_progen: after a resize both arms read rx_queue and
    # ifindex, and LLVM merges them into loads through `ctx + 16` / `ctx + 12` computed once
    # ("dereference of modified ctx ptr R5 off=12 disallowed").
    if not pkt.resize_head(4):
        return XDP_PASS if pkt.rx_queue == pkt.len else XDP_DROP
    if pkt.rx_queue == pkt.ifindex:
        entry = flows.get(0)
    return XDP_PASS

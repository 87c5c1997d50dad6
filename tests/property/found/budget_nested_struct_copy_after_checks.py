"""Budget under-estimate: the verifier processes 252 instructions, the checker estimates 181.

A lookup tested together with two of its nested fields, then a view, then a map update
whose value copies a nested struct (`total=stats.total`, 56 bytes) out of the looked-up
entry: the copy is charged once, the verifier walks it on each path the tests left apart."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth


class Flow(Struct):
    count: bool
    total: u16
    last: Array[i64, 6]


class Stats(Struct):
    total: Flow
    last: be16


slots = ArrayMap(Stats, max_entries=3)


@xdp
def rx(pkt: Packet) -> int:
    stats = slots.get(2)
    if stats is None or (stats.total.total != u8(100) or stats.total.count):
        return XDP_TX
    eth = pkt.header(Eth, 0)
    if eth:
        slots[1] = Stats(total=stats.total, last=eth.proto)
    return XDP_REDIRECT

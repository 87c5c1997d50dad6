"""Budget under-estimate: the verifier processes 6,166 instructions, the checker estimates 670.

A 16-iteration loop whose body does `max(i, flow.count)` and a map update keyed by a field
of a stack struct: every iteration is walked on several paths (the `max` branch, the
helper's result), which the estimate counts once per iteration."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp

LIMIT: u16 = 925


class Flow(Struct):
    count: u64
    total: u32


slots = ArrayMap(Flow, max_entries=3)


def update(flow: Flow) -> u64:
    for i in range(16):
        flow3 = Flow(count=max(i, flow.count), total=LIMIT)
        slots.set(flow.total % 3, flow3)
    return 0xFFFF


@xdp
def rx(pkt: Packet) -> int:
    tcp = pkt.header(Tcp, Eth.size + IPv4.size)
    if not tcp:
        return XDP_TX
    update(Flow(count=LIMIT << tcp.doff_res))
    return XDP_DROP

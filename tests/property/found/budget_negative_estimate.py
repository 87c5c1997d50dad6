"""Checker bug: the budget estimate of `rx` is negative ("verifier ~-N of 1,000,000
processed" in `etran check`), so it is no bound at all (the kernel processes more).

A loop whose body tests two None-able references (`flow`, `eth`, taken before the loop) in
an if/elif; found with the working-tree estimator that tracks liveness across iterations
(test_progen's budget property: kernel count <= estimate, with estimates of -2,069,196 and
-4,271 in other generated programs)."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth

MASK: u16 = 3142


class Flow(Struct):
    count: i64


slots = ArrayMap(Flow, max_entries=7)


@xdp
def rx(pkt: Packet) -> int:
    flow = slots.get(2)
    eth = pkt.header(Eth, 0)
    for i in range(5, -1, -2):
        if flow is not None or pkt.rx_queue <= MASK:
            delta = max(pkt.ifindex, 37)
        elif eth is not None and (flow is not None and pkt.ifindex <= u8(80)):
            pass
    return XDP_REDIRECT

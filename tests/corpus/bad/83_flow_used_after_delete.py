from etran.dsl import *
# expect: map-ref-after-update at 22:8
# The flow's entry is deleted, then read through the reference taken before.


class Flow(Struct):
    packets: u64
    closing: bool


flows = HashMap(u32, Flow, max_entries=1024)


@xdp
def close_flow(pkt: Packet) -> int:
    f = flows.get(pkt.rx_queue)
    if f is None:
        return XDP_PASS
    if not f.closing:
        return XDP_PASS
    flows.delete(pkt.rx_queue)
    if f.packets > 100:
        return XDP_DROP
    return XDP_PASS

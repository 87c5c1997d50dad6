from etran.dsl import *
# expect: map-op at 17:9
# Deleting a slot of an ArrayMap: array slots always exist.


class Slot(Struct):
    owner: u32


slots = ArrayMap(Slot, max_entries=64)


@xdp
def release(pkt: Packet) -> int:
    s = slots.get(pkt.rx_queue)
    if s is not None and s.owner == pkt.ifindex:
        slots.delete(pkt.rx_queue)
    return XDP_PASS

from etran.dsl import *
# expect: map-decl at 11:37
# A RingBuf's size is a power of two and a multiple of the page size; 10000 is neither.


class Event(Struct):
    queue: u32
    length: u32


events = RingBuf(Event, max_entries=10000)


@xdp
def trace(pkt: Packet) -> int:
    events.output(Event(queue=pkt.rx_queue, length=pkt.len))
    return XDP_PASS

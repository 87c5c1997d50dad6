from etran.dsl import *
# expect: hook at 14:5
# An @xdp hook receives only the packet; the developer also asked for the queue.


class Stats(Struct):
    packets: u64


stats = PerCpuArray(Stats, max_entries=64)


@xdp
def count_queue(pkt: Packet, queue: u32) -> int:
    s = stats.get(queue)
    if s is not None:
        s.packets += 1
    return XDP_PASS

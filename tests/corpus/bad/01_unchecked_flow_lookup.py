from etran.dsl import *
# expect: none-check at 17:5
# The flow lookup can miss, but `f.packets` is updated without checking for None.


class Flow(Struct):
    packets: u64
    bytes: u64


flows = HashMap(u32, Flow, max_entries=1024)


@xdp
def count_flow(pkt: Packet) -> int:
    f = flows.get(pkt.rx_queue)
    f.packets += 1
    return XDP_PASS

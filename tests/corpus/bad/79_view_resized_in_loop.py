from etran.dsl import *
from etran.bpf_templates.headers import Eth
# expect: view-after-resize at 13:9
# Each iteration trims a byte; from the second iteration on, `eth` is stale.


@xdp
def trim(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None:
        return XDP_PASS
    for i in range(2):
        eth.proto = 0
        pkt.resize_tail(-1)
    return XDP_PASS

"""Budget under-estimate (3.31x at 16 iterations, found on a 1,500-program sample after the
final campaign): a loop adding `min(packet byte, 182)` into a stack struct field that is
then a packet index. The verifier keeps the ranges of every mix of choices apart: 341,
1,921, 10,139, 47,815, 793,294 processed at 4, 8, 12, 16, 24 iterations (about 1.5x per
iteration), past the limit by 32. The estimate now doubles per iteration for such
accumulators. Kept at 12 iterations, where the checker accepts it."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Udp, ETH_P_IP
class Flow(Struct):
    total: i16
@xdp
def rx(pkt: Packet) -> int:
    return XDP_REDIRECT
@xdp
def classify_rx(pkt: Packet) -> int:
    eth2 = pkt.header(Eth, 0)
    if eth2 is None:
        return XDP_TX
    flow = Flow()
    for j in range(1, min(eth2.dst[2], 12)):
        flow.total += min(i16(eth2.dst[1]), 182)
    if eth2:
        val = (eth2.src[3] | eth2.dst[1]) * (eth2.dst[flow.total] * eth2.dst[5])
    return XDP_PASS


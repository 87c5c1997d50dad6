"""Verifier rejection of a checker-accepted program: the accumulator of
budget_loop_accumulates_min_into_index.py over 32 iterations ("BPF program is too
large"), which the checker accepted: its estimate grew linearly with the iterations."""
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
    for j in range(1, min(eth2.dst[2], 32)):
        flow.total += min(i16(eth2.dst[1]), 182)
    if eth2:
        val = (eth2.src[3] | eth2.dst[1]) * (eth2.dst[flow.total] * eth2.dst[5])
    return XDP_PASS


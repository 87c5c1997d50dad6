"""Budget under-estimate (2.16x): `pkt.resize_head(8)` in a loop of 16. The resize was
charged as one helper call; the lowering also tests its result, re-checks the bounds and
zeroes the 8 new bytes, and each test leaves a state that walks into the next iteration."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, Udp, IPPROTO_UDP
@xdp
def rx(pkt: Packet) -> int:
    return XDP_DROP if True else XDP_REDIRECT
@xdp
def classify_rx(pkt: Packet) -> int:
    ip = pkt.header(IPv4, Eth.size)
    if ip is not None:
        for k in range(16):
            pkt.resize_head(8)
    return XDP_DROP


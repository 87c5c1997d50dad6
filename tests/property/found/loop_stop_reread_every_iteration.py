"""Budget under-estimate (1.72x): a loop whose stop `min(ip.protocol, 8)` was evaluated again
before every iteration, each time a new branch; the stop is now evaluated once, as in Python."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, Udp
@xdp
def rx(pkt: Packet) -> int:
    ip = pkt.header(IPv4, Eth.size)
    if ip is None:
        return XDP_TX
    for i in range(1, min(ip.protocol, 8)):
        seen = True
    return XDP_ABORTED
@xdp
def classify_rx(pkt: Packet) -> int:
    return XDP_TX


from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, TCP_ACK
# expect: none-check at 13:8
# The TCP header view is None when the frame is too short, but it is read unchecked.


@xdp
def drop_pure_acks(pkt: Packet) -> int:
    ip = pkt.header(IPv4, Eth.size)
    if ip is None:
        return XDP_PASS
    tcp = pkt.header(Tcp, Eth.size + ip.header_len())
    if tcp.flags & TCP_ACK != 0:
        return XDP_DROP
    return XDP_PASS

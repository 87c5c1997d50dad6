from etran.dsl import *
from etran.bpf_templates.headers import Eth, Tcp, IPv4
# expect: unsupported-syntax at 13:28
# Testing a port against a set of ports with `in`.


@xdp
def rx(pkt: Packet) -> int:
    ip = pkt.header(IPv4, Eth.size)
    if ip is None:
        return XDP_PASS
    tcp = pkt.header(Tcp, Eth.size + ip.header_len())
    if tcp is not None and tcp.dst_port in (80, 443):
        return XDP_PASS
    return XDP_DROP

from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, IPPROTO_TCP, IPPROTO_UDP
# expect: unsupported-syntax at 12:5
# Dispatching on the protocol with `match`.


@xdp
def rx(pkt: Packet) -> int:
    ip = pkt.header(IPv4, Eth.size)
    if ip is None:
        return XDP_PASS
    match ip.protocol:
        case 6:
            return XDP_PASS
        case _:
            return XDP_DROP

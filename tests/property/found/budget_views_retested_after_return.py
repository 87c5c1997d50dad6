"""Budget under-estimate (1.01x, and 4.4x before the margin): many views in straight-line
code, one tested, then re-tested after an arm that returns. A model that partitioned the
paths on a repeated null test (instead of doubling them) under-counted here and was
removed."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, Udp, ETH_P_IP, TCP_FIN
class Conn(Struct):
    count: u16
class Shim(Header):
    flags: u8
slots2 = ArrayMap(Conn, max_entries=3)
@xdp
def rx(pkt: Packet) -> int:
    tcp = pkt.header(Tcp, Eth.size + IPv4.size)
    if tcp is not None:
        udp = pkt.header(Udp, Eth.size + IPv4.size)
        if udp is None or not False:
            return XDP_PASS
    if tcp is None:
        return XDP_REDIRECT
    eth = pkt.header(Eth, 0)
    if eth is None:
        return XDP_DROP if tcp.window >= 59 else XDP_REDIRECT
    shim = pkt.header(Shim, u8(i16(41)) & 63)
    if shim is None:
        return XDP_TX
    ip = pkt.header(IPv4, Eth.size)
    limit = 7 % tcp.urg_ptr
    if not ip:
        return XDP_ABORTED
    eth2 = pkt.header(Eth, 0)
    limit *= tcp.src_port
    conn = slots2.get(0)
    if conn is None:
        return XDP_PASS
    diff: u8 = ip.tos << 0
    return XDP_TX if tcp.urg_ptr != ip.tos else XDP_DROP


"""Test transport: count every frame, and hand UDP frames for port 9005 to the app's socket."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Udp, ETH_P_IP, IPPROTO_UDP

APP_PORT = 9005


class Counters(Struct):
    frames: u64
    udp: u64
    redirected: u64


counters = ArrayMap(Counters, max_entries=1)
xsks = XskMap(max_entries=4)


@xdp
def rx(pkt: Packet) -> int:
    c = counters.get(0)
    if c is None:
        return XDP_PASS
    atomic_add(c.frames, 1)
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_UDP:
        return XDP_PASS
    udp = pkt.header(Udp, Eth.size + ip.header_len())
    if udp is None:
        return XDP_PASS
    atomic_add(c.udp, 1)
    if udp.dst_port != APP_PORT:
        return XDP_PASS
    atomic_add(c.redirected, 1)
    return xsks.redirect(pkt.rx_queue, XDP_PASS)

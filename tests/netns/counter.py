"""Test transport: count every frame and every UDP frame to port 9000; pass them all."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Udp, ETH_P_IP, IPPROTO_UDP

PORT = 9000


class Counters(Struct):
    frames: u64
    port_frames: u64


counters = ArrayMap(Counters, max_entries=1)


@xdp
def count(pkt: Packet) -> int:
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
    if udp.dst_port == PORT:
        atomic_add(c.port_frames, 1)
    return XDP_PASS

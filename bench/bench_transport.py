"""Benchmark transport for the runtime: egress stamping in two forms, a counting sink, a
generator that makes frames while it has credits, and delivery to an AF_XDP socket.

`stamp` is the @egress hook: run by the test-run path (etran.runtime.hooks.Egress), or, in a
native build, on the far end of the application's veth (etran.runtime.native).
"""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Udp, IPv4Words, ETH_P_IP, IPPROTO_UDP, csum_fold

PORT = 9000
APP_PORT = 9005


class Seq(Header):
    value: be32


class Config(Struct):
    local_mac: Array[u8, 6]
    remote_mac: Array[u8, 6]
    local_ip: u32
    remote_ip: u32
    credits: u32


class Counters(Struct):
    stamped: u64
    sunk: u64
    generated: u64


config = ArrayMap(Config, max_entries=1)
counters = ArrayMap(Counters, max_entries=1)
app_sockets = XskMap(max_entries=4)


def stamp_frame(pkt: Packet) -> bool:
    c = counters.get(0)
    if c is None:
        return False
    seq = pkt.header(Seq, Eth.size + IPv4.size + Udp.size)
    if seq is None:
        return False
    udp = pkt.header(Udp, Eth.size + IPv4.size)
    if udp is None:
        return False
    c.stamped += 1
    seq.value = u32(c.stamped)
    udp.check = 0
    return True


@egress
def stamp(pkt: Packet) -> int:
    if stamp_frame(pkt):
        return XDP_TX
    return XDP_DROP


@xdp
def sink(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_UDP:
        return XDP_PASS
    udp = pkt.header(Udp, Eth.size + ip.header_len())
    if udp is None or udp.dst_port != PORT:
        return XDP_PASS
    c = counters.get(0)
    if c is not None:
        atomic_add(c.sunk, 1)
    return XDP_DROP


@xdp
def to_app(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_UDP:
        return XDP_PASS
    udp = pkt.header(Udp, Eth.size + ip.header_len())
    if udp is None or udp.dst_port != APP_PORT:
        return XDP_PASS
    return app_sockets.redirect(pkt.rx_queue, XDP_PASS)


@gen
def burst(pkt: Packet) -> int:
    cfg = config.get(0)
    c = counters.get(0)
    if cfg is None or c is None or cfg.credits == 0:
        return XDP_DROP
    eth = pkt.header(Eth, 0)
    ip = pkt.header(IPv4, Eth.size)
    udp = pkt.header(Udp, Eth.size + IPv4.size)
    seq = pkt.header(Seq, Eth.size + IPv4.size + Udp.size)
    if eth is None or ip is None or udp is None or seq is None:
        return XDP_DROP
    for i in range(6):
        eth.dst[i] = cfg.remote_mac[i]
        eth.src[i] = cfg.local_mac[i]
    eth.proto = ETH_P_IP
    ip.ver_ihl = 0x45
    ip.tos = 0
    ip.total_len = IPv4.size + Udp.size + Seq.size
    ip.id = 0
    ip.frag_off = 0x4000
    ip.ttl = 64
    ip.protocol = IPPROTO_UDP
    ip.check = 0
    ip.src = cfg.local_ip
    ip.dst = cfg.remote_ip
    udp.src_port = PORT
    udp.dst_port = PORT
    udp.len = Udp.size + Seq.size
    udp.check = 0
    cfg.credits -= 1
    c.generated += 1
    seq.value = u32(c.generated)
    words = pkt.header(IPv4Words, Eth.size)
    if words is None:
        return XDP_DROP
    total: u32 = 0
    for i in range(10):
        total += words.w[i]
    ip.check = csum_fold(total)
    return XDP_TX

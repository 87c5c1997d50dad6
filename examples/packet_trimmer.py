"""Trim payloads under congestion, NDP-style: keep the headers, drop the data, mark the frame.

When the per-CPU count of frames in the current interval exceeds a threshold
(a stand-in for a full queue), UDP frames to the transport's port are cut to
their headers with a tail shrink, and the trimmed flag goes in the IPv4 TOS
byte so the receiver can ask for a retransmission instead of waiting for a
timeout. The IPv4 length and checksum are fixed up.
"""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Udp, ETH_P_IP, IPPROTO_UDP, ipv4_checksum

TRANSPORT_PORT = 4791
INTERVAL_NS = 100_000
THRESHOLD = 32
TRIMMED_TOS = 0x04


class Load(Struct):
    interval_start: u64
    frames: u32
    trimmed: u64


load = PerCpuArray(Load, max_entries=1)


@xdp
def trim(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_UDP or ip.header_len() != IPv4.size:
        return XDP_PASS
    udp = pkt.header(Udp, Eth.size + IPv4.size)
    if udp is None or udp.dst_port != TRANSPORT_PORT:
        return XDP_PASS
    l = load.get(0)
    if l is None:
        return XDP_PASS
    now = now_ns()
    if now - l.interval_start > INTERVAL_NS:
        l.interval_start = now
        l.frames = 0
    l.frames += 1
    if l.frames <= THRESHOLD:
        return XDP_PASS
    headers = Eth.size + IPv4.size + Udp.size
    extra = i32(pkt.len) - headers
    if extra <= 0:
        return XDP_PASS
    if not pkt.resize_tail(-extra):
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    udp = pkt.header(Udp, Eth.size + IPv4.size)
    if ip is None or udp is None:
        return XDP_DROP
    ip.tos = ip.tos | TRIMMED_TOS
    ip.total_len = IPv4.size + Udp.size
    ip.check = 0
    ip.check = ipv4_checksum(pkt, Eth.size)
    udp.len = Udp.size
    udp.check = 0
    l.trimmed += 1
    return XDP_PASS

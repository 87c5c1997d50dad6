"""Answer UDP packets to the echo port from the NIC: swap addresses and send the frame back.

The reply reuses the frame: MAC addresses, IP addresses and ports are swapped,
the TTL reset, the IPv4 header checksum recomputed and the UDP checksum set to
zero (optional for IPv4). Other traffic passes to the kernel stack.
"""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Udp, ETH_P_IP, IPPROTO_UDP, ipv4_checksum

ECHO_PORT = 7


class Replies(Struct):
    count: u64


replies = PerCpuArray(Replies, max_entries=1)


@xdp
def echo(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_UDP or ip.header_len() != IPv4.size:
        return XDP_PASS
    udp = pkt.header(Udp, Eth.size + IPv4.size)
    if udp is None or udp.dst_port != ECHO_PORT:
        return XDP_PASS
    for i in range(6):
        byte = eth.dst[i]
        eth.dst[i] = eth.src[i]
        eth.src[i] = byte
    addr = ip.src
    ip.src = ip.dst
    ip.dst = addr
    ip.ttl = 64
    ip.check = 0
    ip.check = ipv4_checksum(pkt, Eth.size)
    port = udp.src_port
    udp.src_port = udp.dst_port
    udp.dst_port = port
    udp.check = 0
    r = replies.get(0)
    if r is not None:
        r.count += 1
    return XDP_TX

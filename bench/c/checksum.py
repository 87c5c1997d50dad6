"""Reflect IPv4 frames: swap the addresses, recompute the header checksum over its ten
16-bit words, swap the MAC addresses and send the frame back out.

The twin of checksum.c, statement for statement. The words are summed as they lie in
memory (`u16`, not `be16`): a one's-complement sum comes out the same in either byte
order (RFC 1071, section 2(B)), so the folded sum is stored back without swapping bytes.
Where the C casts the IPv4 header to words, the twin takes a second view of the same bytes:
the language has no casts.
"""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, ETH_P_IP


class Words(Header):
    w: Array[u16, 10]


class Mac(Struct):
    addr: Array[u8, 6]


@xdp
def reflect(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.ver_ihl & 0x0F != 5:
        return XDP_PASS
    addr = ip.src
    ip.src = ip.dst
    ip.dst = addr
    ip.check = 0
    words = pkt.header(Words, Eth.size)
    if words is None:
        return XDP_PASS
    s: u32 = 0
    for i in range(10):
        s += words.w[i]
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    words.w[5] = u16(~s)
    mac = Mac()
    mac.addr = eth.dst
    eth.dst = eth.src
    eth.src = mac.addr
    return XDP_TX

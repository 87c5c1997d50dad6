"""The ones'-complement sum of a 1,460-byte payload, 16 bits at a time, as a TCP checksum
needs: a bounded loop of 730 steps, one packet view per word."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Udp, ETH_P_IP, IPPROTO_UDP

WORDS = 730


class Word(Header):
    value: be16


class Sums(Struct):
    last: u32


sums = ArrayMap(Sums, max_entries=1)


@xdp
def checksum(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_UDP:
        return XDP_PASS
    start = Eth.size + ip.header_len() + Udp.size
    total: u32 = 0
    for i in range(WORDS):
        w = pkt.header(Word, start + 2 * i)
        if w is None:
            break
        total += w.value
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    s = sums.get(0)
    if s is not None:
        s.last = total
    return XDP_PASS

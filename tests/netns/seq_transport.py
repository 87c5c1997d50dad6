"""Test transport for the hook runtime: egress stamps sequence numbers, gen sends ACKs.

Host A's application sends UDP frames to B:9005. A's @egress writes the next sequence number
into the first 4 payload bytes and transmits. B's @xdp records the highest sequence seen, asks
for an ACK, and hands the frame to B's application socket. B's @gen, when an ACK is due, builds
a UDP frame to A:9006 carrying that sequence number and transmits it, then says it is done.
A's @xdp consumes ACKs and records the highest acknowledged sequence. B's @xdp also raises a
flag in `wake` and writes a record to `asks`, for a runtime that runs gen when asked rather
than after each batch.
"""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Udp, IPv4Words, ETH_P_IP, IPPROTO_UDP, csum_fold

DATA_PORT = 9005
ACK_PORT = 9006


class Seq(Header):
    value: be32


class Config(Struct):
    local_mac: Array[u8, 6]
    remote_mac: Array[u8, 6]
    local_ip: u32
    remote_ip: u32


class State(Struct):
    next_seq: u32
    highest_seen: u32
    highest_acked: u32
    ack_due: u32
    received: u64
    acks_sent: u64
    acks_received: u64


class Wake(Struct):
    asked: u32


config = ArrayMap(Config, max_entries=1)
wake = ArrayMap(Wake, max_entries=1)
asks = RingBuf(Wake, max_entries=4096)
state = ArrayMap(State, max_entries=1)
xsks = XskMap(max_entries=4)


@egress
def stamp(pkt: Packet) -> int:
    s = state.get(0)
    if s is None:
        return XDP_DROP
    seq = pkt.header(Seq, Eth.size + IPv4.size + Udp.size)
    if seq is None:
        return XDP_DROP
    s.next_seq += 1
    seq.value = s.next_seq
    udp = pkt.header(Udp, Eth.size + IPv4.size)
    if udp is None:
        return XDP_DROP
    udp.check = 0
    return XDP_TX


@xdp
def rx(pkt: Packet) -> int:
    s = state.get(0)
    if s is None:
        return XDP_PASS
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_UDP:
        return XDP_PASS
    udp = pkt.header(Udp, Eth.size + IPv4.size)
    if udp is None:
        return XDP_PASS
    seq = pkt.header(Seq, Eth.size + IPv4.size + Udp.size)
    if seq is None:
        return XDP_PASS
    if udp.dst_port == DATA_PORT:
        s.received += 1
        if seq_after(seq.value, s.highest_seen):
            s.highest_seen = seq.value
        s.ack_due = 1
        w = wake.get(0)
        if w is not None:
            w.asked = 1
        asks.output(Wake(asked=1))
        return xsks.redirect(pkt.rx_queue, XDP_PASS)
    if udp.dst_port == ACK_PORT:
        s.acks_received += 1
        if seq_after(seq.value, s.highest_acked):
            s.highest_acked = seq.value
        return XDP_DROP
    return XDP_PASS


@gen
def ack(pkt: Packet) -> int:
    s = state.get(0)
    c = config.get(0)
    if s is None or c is None:
        return XDP_DROP
    if s.ack_due == 0:
        return XDP_DROP
    eth = pkt.header(Eth, 0)
    ip = pkt.header(IPv4, Eth.size)
    udp = pkt.header(Udp, Eth.size + IPv4.size)
    seq = pkt.header(Seq, Eth.size + IPv4.size + Udp.size)
    if eth is None or ip is None or udp is None or seq is None:
        return XDP_DROP
    for i in range(6):
        eth.dst[i] = c.remote_mac[i]
        eth.src[i] = c.local_mac[i]
    eth.proto = ETH_P_IP
    ip.ver_ihl = 0x45
    ip.tos = 0
    ip.total_len = IPv4.size + Udp.size + Seq.size
    ip.id = 0
    ip.frag_off = 0x4000
    ip.ttl = 64
    ip.protocol = IPPROTO_UDP
    ip.check = 0
    ip.src = c.local_ip
    ip.dst = c.remote_ip
    udp.src_port = DATA_PORT
    udp.dst_port = ACK_PORT
    udp.len = Udp.size + Seq.size
    udp.check = 0
    seq.value = s.highest_seen
    words = pkt.header(IPv4Words, Eth.size)
    if words is None:
        return XDP_DROP
    total: u32 = 0
    for i in range(10):
        total += words.w[i]
    ip.check = csum_fold(total)
    s.ack_due = 0
    s.acks_sent += 1
    return XDP_TX

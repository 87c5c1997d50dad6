"""A link impairment: drop chosen UDP datagrams a chosen number of times.

Attached where a link ends (a switch port, `Topology.set_link_program`), it
looks at UDP frames to the port in `rule`, reads a 32-bit big-endian word at
`rule.key_offset` bytes into their payload (a sequence number, say), and drops
the frame while `victims[word].remaining` is above zero, counting each drop.
With `rule.match_kind` set, only frames whose payload byte at
`rule.kind_offset` equals `rule.kind` are considered (DATA but not ACKs, say).
Everything else passes. The control plane fills `rule` and `victims`; `totals`
counts what was seen and dropped.
"""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Udp, ETH_P_IP, IPPROTO_UDP

MAX_OFFSET = 1024             # keys and kinds sit in the first KiB of the payload


class Rule(Struct):
    port: u16
    key_offset: u16
    kind_offset: u16
    kind: u8
    match_kind: bool


class Victim(Struct):
    remaining: u32
    dropped: u32


class Totals(Struct):
    seen: u64                 # frames that matched the rule
    dropped: u64


class Word(Header):
    value: be32


class Byte(Header):
    value: u8


rule = ArrayMap(Rule, max_entries=1)
victims = HashMap(u32, Victim, max_entries=1024)
totals = ArrayMap(Totals, max_entries=1)


@xdp
def impair(pkt: Packet) -> int:
    r = rule.get(0)
    t = totals.get(0)
    if r is None or t is None or r.port == 0:
        return XDP_PASS
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_UDP:
        return XDP_PASS
    payload = Eth.size + ip.header_len() + Udp.size
    udp = pkt.header(Udp, payload - Udp.size)
    if udp is None or udp.dst_port != r.port:
        return XDP_PASS
    if r.match_kind:
        kind = pkt.header(Byte, payload + min(u32(r.kind_offset), MAX_OFFSET))
        if kind is None or kind.value != r.kind:
            return XDP_PASS
    word = pkt.header(Word, payload + min(u32(r.key_offset), MAX_OFFSET))
    if word is None:
        return XDP_PASS
    atomic_add(t.seen, 1)
    v = victims.get(word.value)
    if v is None or v.remaining == 0:
        return XDP_PASS
    v.remaining -= 1
    v.dropped += 1
    atomic_add(t.dropped, 1)
    return XDP_DROP

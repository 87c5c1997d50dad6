"""A Homa receiver's hook: find the message's slot among 16 by RPC id, update its bytes
remaining, then rank the active slots by bytes remaining (SRPT) to pick who is granted."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, ETH_P_IP

IPPROTO_HOMA = 0xFD
SLOTS = 16


class HomaData(Header):
    sport: be16
    dport: be16
    kind: u8
    priority: u8
    reserved: be16
    rpc_id: be64
    offset: be32
    length: be32


class Table(Struct):
    rpc: Array[u64, 16]
    remaining: Array[u32, 16]
    active: Array[bool, 16]
    granted: Array[u8, 16]


table = ArrayMap(Table, max_entries=1)


@xdp
def rx(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_HOMA:
        return XDP_PASS
    h = pkt.header(HomaData, Eth.size + ip.header_len())
    if h is None:
        return XDP_PASS
    t = table.get(0)
    if t is None:
        return XDP_PASS
    slot: u32 = SLOTS
    for i in range(SLOTS):
        if t.active[i] and t.rpc[i] == h.rpc_id:
            slot = i
            break
    if slot == SLOTS:
        return XDP_PASS
    t.remaining[slot] -= min(h.length, t.remaining[slot])
    for i in range(SLOTS):
        rank: u8 = 0
        for j in range(SLOTS):
            if t.active[j] and t.remaining[j] < t.remaining[i]:
                rank += 1
        t.granted[i] = rank
    return XDP_PASS

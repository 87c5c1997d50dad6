"""Per-flow counters in an LRU table, plus per-CPU totals, for every IPv4 frame
(examples/flow_stats.py).

Flows are keyed by the 5-tuple (ports are zero for protocols without them).
The LRU table keeps the most recently active flows when it fills up; the
per-CPU totals need no atomics because each CPU updates its own copy. The twin of
flow_table.c, statement for statement.
"""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, Udp, ETH_P_IP, IPPROTO_TCP, IPPROTO_UDP


class FiveTuple(Struct):
    src: be32
    dst: be32
    sport: be16
    dport: be16
    protocol: u8


class FlowCounters(Struct):
    packets: u64
    bytes: u64
    first_ns: u64
    last_ns: u64
    max_size: u32


class Totals(Struct):
    packets: u64
    bytes: u64
    new_flows: u64
    non_ip: u64


flows = LruHashMap(FiveTuple, FlowCounters, max_entries=8192)
totals = PerCpuArray(Totals, max_entries=1)


@xdp
def account(pkt: Packet) -> int:
    t = totals.get(0)
    if t is None:
        return XDP_PASS
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        t.non_ip += 1
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None:
        t.non_ip += 1
        return XDP_PASS
    key = FiveTuple(src=ip.src, dst=ip.dst, protocol=ip.protocol)
    l4 = Eth.size + ip.header_len()
    if ip.protocol == IPPROTO_TCP:
        tcp = pkt.header(Tcp, l4)
        if tcp is not None:
            key.sport = tcp.src_port
            key.dport = tcp.dst_port
    elif ip.protocol == IPPROTO_UDP:
        udp = pkt.header(Udp, l4)
        if udp is not None:
            key.sport = udp.src_port
            key.dport = udp.dst_port
    size = pkt.len
    now = now_ns()
    t.packets += 1
    t.bytes += size
    f = flows.get(key)
    if f is None:
        t.new_flows += 1
        flows.set(key, FlowCounters(packets=1, bytes=size, first_ns=now, last_ns=now,
                                    max_size=size))
        return XDP_PASS
    f.packets += 1
    f.bytes += size
    f.last_ns = now
    f.max_size = max(f.max_size, size)
    return XDP_PASS

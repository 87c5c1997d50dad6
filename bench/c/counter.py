"""Per-protocol packet and byte counters: one per-CPU slot per IP protocol number.

The twin of counter.c, statement for statement (bench/vs_clang.py compares the two).
"""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, ETH_P_IP


class Counter(Struct):
    packets: u64
    bytes: u64


counters = PerCpuArray(Counter, max_entries=256)


@xdp
def count(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None:
        return XDP_PASS
    c = counters.get(u32(ip.protocol))
    if c is None:
        return XDP_PASS
    c.packets += 1
    c.bytes += pkt.len
    return XDP_PASS

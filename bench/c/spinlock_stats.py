"""Per-port packet-size statistics shared by all CPUs, updated under a spin lock
(examples/spinlock_stats.py).

Count, sum, minimum and maximum of UDP frame sizes per destination port must
change together, so each update holds the entry's SpinLock. The clock is read
before taking the lock: the verifier allows no helper calls under it. The twin of
spinlock_stats.c, statement for statement.
"""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Udp, ETH_P_IP, IPPROTO_UDP


class PortStats(Struct):
    lock: SpinLock
    count: u64
    total_bytes: u64
    smallest: u32
    largest: u32
    last_ns: u64


ports = HashMap(u16, PortStats, max_entries=256)


@xdp
def measure(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_UDP:
        return XDP_PASS
    udp = pkt.header(Udp, Eth.size + ip.header_len())
    if udp is None:
        return XDP_PASS
    s = ports.get(udp.dst_port)
    if s is None:
        return XDP_PASS
    size = pkt.len
    now = now_ns()
    with s.lock:
        if s.count == 0 or size < s.smallest:
            s.smallest = size
        s.largest = max(s.largest, size)
        s.count += 1
        s.total_bytes += size
        s.last_ns = now
    return XDP_PASS

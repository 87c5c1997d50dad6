"""Drop TCP and UDP traffic to blocked destination ports, configured as a bitmap in a map
(examples/port_firewall.py).

User space sets bits in `config.blocked` (one bit per port, 65536 bits as 1024
words); the program tests the bit for each frame's destination port. Counters
of dropped frames per protocol let the operator see the rule working. The twin of
port_firewall.c, statement for statement.
"""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, Udp, ETH_P_IP, IPPROTO_TCP, IPPROTO_UDP


class Config(Struct):
    enabled: bool
    blocked: Array[u64, 1024]


class Drops(Struct):
    tcp: u64
    udp: u64


config = ArrayMap(Config, max_entries=1)
drops = PerCpuArray(Drops, max_entries=1)


def is_blocked(cfg: Config, port: u16) -> bool:
    word = cfg.blocked[port >> 6]
    return (word >> (port & 63)) & 1 == 1


@xdp
def firewall(pkt: Packet) -> int:
    cfg = config.get(0)
    if cfg is None or not cfg.enabled:
        return XDP_PASS
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None:
        return XDP_PASS
    l4 = Eth.size + ip.header_len()
    d = drops.get(0)
    if d is None:
        return XDP_ABORTED
    if ip.protocol == IPPROTO_TCP:
        tcp = pkt.header(Tcp, l4)
        if tcp is not None and is_blocked(cfg, tcp.dst_port):
            d.tcp += 1
            return XDP_DROP
    elif ip.protocol == IPPROTO_UDP:
        udp = pkt.header(Udp, l4)
        if udp is not None and is_blocked(cfg, udp.dst_port):
            d.udp += 1
            return XDP_DROP
    return XDP_PASS

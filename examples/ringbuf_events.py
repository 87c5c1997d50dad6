"""Log connection attempts: one ring-buffer event per TCP SYN, for a user-space collector.

Events carry the 4-tuple, the SYN's window and the receive queue. A per-CPU
counter keeps how many events could not be written because the ring was full,
so the collector knows what it missed.
"""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, ETH_P_IP, IPPROTO_TCP, TCP_SYN, TCP_ACK


class SynEvent(Struct):
    src: be32
    dst: be32
    sport: be16
    dport: be16
    window: u16
    queue: u32


class Lost(Struct):
    events: u64


events = RingBuf(SynEvent, max_entries=16384)
lost = PerCpuArray(Lost, max_entries=1)


@xdp
def syn_log(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_TCP:
        return XDP_PASS
    tcp = pkt.header(Tcp, Eth.size + ip.header_len())
    if tcp is None:
        return XDP_PASS
    if tcp.has(TCP_SYN) and not tcp.has(TCP_ACK):
        ev = SynEvent(src=ip.src, dst=ip.dst, sport=tcp.src_port, dport=tcp.dst_port,
                      window=tcp.window, queue=pkt.rx_queue)
        if not events.output(ev):
            c = lost.get(0)
            if c is not None:
                c.events += 1
    return XDP_PASS

"""A link for TCP experiments: drops and ECN marks on data segments, deterministic.

Attach `tcp_link` where a link ends (the switch port facing the sending host,
`Topology.set_link_program`). It counts TCP segments that carry data; with
`config.drop_every = N` it drops the N-th, 2N-th... and with `config.burst = B` the B - 1
data segments after each of those too (a burst); with `config.mark_every = M` it sets CE on
every M-th data segment that is ECN-capable (ECT(0) or ECT(1)), fixing the IPv4 checksum
(RFC 1624). With `config.fresh_only`, only segments carrying new data count and can be
dropped (sequence numbers past the highest seen; one flow): retransmissions always pass, so
every loss is a single loss that fast retransmit can repair. Everything else passes.
`state` counts what was seen, dropped and marked.
"""
from etran.dsl import *
from etran.bpf_templates.headers import (
    Eth, IPv4, Tcp, ETH_P_IP, IPPROTO_TCP, ECN_CE, csum_replace16,
)


class LinkConfig(Struct):
    drop_every: u32       # 0: no drops
    burst: u32            # data segments dropped in a row from each N-th (0 or 1: one)
    mark_every: u32       # 0: no marks
    fresh_only: u32       # non-zero: retransmissions are neither counted nor dropped


class LinkState(Struct):
    seen: u64             # data segments
    dropped: u64
    marked: u64
    dropping: u32         # how many more of the current burst to drop
    highest: u32          # the highest sequence number seen (fresh_only)
    started: u32


config = ArrayMap(LinkConfig, max_entries=1)
state = ArrayMap(LinkState, max_entries=1)


@xdp
def tcp_link(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_TCP or ip.ver_ihl != 0x45:
        return XDP_PASS
    tcp = pkt.header(Tcp, Eth.size + IPv4.size)
    if tcp is None:
        return XDP_PASS
    if u32(ip.total_len) <= IPv4.size + tcp.header_len():
        return XDP_PASS                    # no data: handshakes, ACKs, FINs pass
    cfg = config.get(0)
    s = state.get(0)
    if cfg is None or s is None:
        return XDP_PASS
    if cfg.fresh_only != 0:
        if s.started != 0 and not seq_after(tcp.seq, s.highest):
            return XDP_PASS                # a retransmission: let it through
        s.highest = tcp.seq
        s.started = 1
    s.seen += 1
    if s.dropping > 0:
        s.dropping -= 1
        s.dropped += 1
        return XDP_DROP
    if cfg.drop_every != 0 and s.seen % cfg.drop_every == 0:
        s.dropping = max(cfg.burst, 1) - 1
        s.dropped += 1
        return XDP_DROP
    if cfg.mark_every != 0 and s.seen % cfg.mark_every == 0 and ip.ecn() != 0:
        old = (u16(ip.ver_ihl) << 8) | u16(ip.tos)
        ip.tos = ip.tos | ECN_CE
        ip.check = csum_replace16(ip.check, old, (u16(ip.ver_ihl) << 8) | u16(ip.tos))
        s.marked += 1
    return XDP_PASS

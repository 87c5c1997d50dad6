"""A link for Homa experiments: deterministic drops of Homa packets, by kind.

Attach `homa_link` where a link ends (the switch port facing the sending host,
`Topology.set_link_program`, or `etran up --link HOST=etran/transports/homa_link.py`). It
counts the Homa packets of the kinds set in `config.kinds` (a bit per kind, DATA = bit 0,
GRANT = bit 1, RESEND = bit 2...; 0 means DATA only) and drops every `config.drop_every`-th
of them. Everything else passes. `state` counts what was seen and dropped, per kind.
"""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, ETH_P_IP

IPPROTO_HOMA = 0xFD
FIRST_KIND = 0x10         # DATA; GRANT, RESEND, UNKNOWN, BUSY and ACK follow


class HomaKind(Header):
    sport: be16
    dport: be16
    kind: u8


class LinkConfig(Struct):
    drop_every: u32       # 0: no drops
    kinds: u32            # bit k: kind FIRST_KIND + k counts (0: DATA only)


class LinkState(Struct):
    seen: Array[u64, 8]   # by kind
    dropped: Array[u64, 8]
    counted: u64


config = ArrayMap(LinkConfig, max_entries=1)
state = ArrayMap(LinkState, max_entries=1)


@xdp
def homa_link(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_HOMA or ip.ver_ihl != 0x45:
        return XDP_PASS
    h = pkt.header(HomaKind, Eth.size + IPv4.size)
    cfg = config.get(0)
    s = state.get(0)
    if h is None or cfg is None or s is None:
        return XDP_PASS
    if h.kind < FIRST_KIND or h.kind >= FIRST_KIND + 8:
        return XDP_PASS
    kind = u32(h.kind - FIRST_KIND)
    s.seen[kind] += 1
    kinds = cfg.kinds if cfg.kinds != 0 else 1
    if (kinds >> kind) & 1 == 0:
        return XDP_PASS
    s.counted += 1
    if cfg.drop_every != 0 and s.counted % cfg.drop_every == 0:
        s.dropped[kind] += 1
        return XDP_DROP
    return XDP_PASS

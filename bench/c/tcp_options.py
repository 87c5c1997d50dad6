"""Walk the TCP options of each segment and record the flow's MSS, window scale, SACK
permission and timestamps in an LRU table.

The walk takes at most MAX_OPTIONS steps (the verifier needs a bound): EOL ends it,
NOP is one byte, every other option carries its length, and a malformed length stops
it. The twin of tcp_options.c, statement for statement: the same program as
examples/tcp_options.py.
"""
from etran.dsl import *
from etran.bpf_templates.headers import (Eth, IPv4, Tcp, TcpOption, ETH_P_IP, IPPROTO_TCP,
                                         TCPOPT_EOL, TCPOPT_NOP, TCPOPT_MSS, TCPOPT_WSCALE,
                                         TCPOPT_SACK_PERM, TCPOPT_TIMESTAMP)

MAX_OPTIONS = 10


class Mss(Header):
    kind: u8
    len: u8
    value: be16


class WindowScale(Header):
    kind: u8
    len: u8
    shift: u8


class Timestamp(Header):
    kind: u8
    len: u8
    value: be32
    echo: be32


class FlowKey(Struct):
    src: be32
    dst: be32
    sport: be16
    dport: be16


class Options(Struct):
    mss: u16
    wscale: u8
    sack_ok: bool
    ts_value: u32
    ts_echo: u32
    options_seen: u8
    malformed: bool


flows = LruHashMap(FlowKey, Options, max_entries=4096)


@xdp
def parse_options(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_TCP:
        return XDP_PASS
    start = Eth.size + ip.header_len()
    tcp = pkt.header(Tcp, start)
    if tcp is None or tcp.header_len() <= Tcp.size:
        return XDP_PASS
    opts = Options()
    off = start + Tcp.size
    end = start + tcp.header_len()
    for i in range(MAX_OPTIONS):
        if off >= end:
            break
        opt = pkt.header(TcpOption, off)
        if opt is None:
            break
        if opt.kind == TCPOPT_EOL:
            break
        if opt.kind == TCPOPT_NOP:
            off += 1
            continue
        if opt.len < 2 or off + opt.len > end:
            opts.malformed = True
            break
        opts.options_seen += 1
        if opt.kind == TCPOPT_MSS and opt.len == Mss.size:
            m = pkt.header(Mss, off)
            if m is not None:
                opts.mss = m.value
        elif opt.kind == TCPOPT_WSCALE and opt.len == WindowScale.size:
            w = pkt.header(WindowScale, off)
            if w is not None:
                opts.wscale = min(w.shift, 14)
        elif opt.kind == TCPOPT_SACK_PERM:
            opts.sack_ok = True
        elif opt.kind == TCPOPT_TIMESTAMP and opt.len == Timestamp.size:
            ts = pkt.header(Timestamp, off)
            if ts is not None:
                opts.ts_value = ts.value
                opts.ts_echo = ts.echo
        off += opt.len
    flows.set(FlowKey(src=ip.src, dst=ip.dst, sport=tcp.src_port, dport=tcp.dst_port), opts)
    return XDP_PASS

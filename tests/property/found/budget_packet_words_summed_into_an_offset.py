"""Budget under-estimate (kernel 2,120, estimate 1,888): `pkt.header(Shim, ipv4_checksum(pkt,
Eth.size) & 63)`, a view at an offset summed from packet words read at a runtime index. The
offset is precise, so the checksum's sum is too, in the callee (precision follows a call's
value into the function it returns from), and each word is the element or 0 past the
packet's end: states the verifier keeps apart at every iteration."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, ipv4_checksum, IPPROTO_UDP, TCP_ACK

LIMIT = 2432
MASK: i32 = 100


class Flow(Struct):
    count: be32
    total: Array[u32, 5]


class Stats(Struct):
    count: i32
    total: be64
    last: be32
    seq: bool
    flags: bool

    def span(self) -> u32:
        return self.last


class Trace(Struct):
    wide: u64
    swide: i64
    word: u32
    sword: i32
    half: u16
    shalf: i16
    byte: u8
    sbyte: i8
    seq: be32
    flag: bool


class Shim(Header):
    count: Array[be16, 3]
    total: u8


slots = ArrayMap(Stats, max_entries=3)
totals = PerCpuArray(Stats, max_entries=3)
flows = HashMap(i32, Stats, max_entries=64)
flows2 = HashMap(u64, Stats, max_entries=4)
traces = ArrayMap(Trace, max_entries=1)


@xdp
def rx(pkt: Packet) -> int:
    stat = Stats(count=MASK, seq=not pkt.rx_queue == 256, flags=pkt.ifindex <= pkt.rx_queue)
    total = stat.last
    ip = pkt.header(IPv4, Eth.size)
    trace = traces.get((total << total) & 0)
    if trace:
        trace.byte = (trace.byte ^ trace.byte) >> 31
        stat.last = -(u32(0x10000) // stat.last)
    tcp = pkt.header(Tcp, Eth.size + IPv4.size)
    if tcp:
        trace2 = traces.get(0)
        if trace2 is None:
            return XDP_ABORTED
        if trace is None:
            return XDP_ABORTED if tcp.has(TCP_ACK) else XDP_REDIRECT
        if ip is not None and ip.protocol == IPPROTO_UDP:
            val: i16 = min(i16(tcp.src_port), 244)
            x: u32 = ip.version()
            ip2 = pkt.header(IPv4, Eth.size)
            if not ip2:
                return XDP_REDIRECT
    n: i8 = i8(MASK | stat.count)
    if ip is not None:
        stats = totals.get(ip.total_len % 3)
        n = min(n, 16) >> 3
        if not trace:
            return XDP_ABORTED
    flows2.replace(2, stat)
    if tcp is not None and tcp.window > tcp.check:
        totals[2] = stat
        acc: u32 = u8(stat.last + pkt.len)
        tcp.doff_res = tcp.flags // tcp.doff_res
    else:
        tcp2 = pkt.header(Tcp, Eth.size + IPv4.size)
        if tcp2 is not None and (stat.flags or tcp2.dst_port != tcp2.doff_res):
            delta = tcp2.doff_res
            if not trace:
                return XDP_DROP
            if ip is None or ip.protocol != IPPROTO_UDP:
                return XDP_PASS
        else:
            stats2 = totals.get(total % 3)
            if stats2 is None:
                return XDP_PASS
            flag = False
    delta2 = n + n * n
    return XDP_PASS


@xdp
def classify_rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_DROP
    tcp = pkt.header(Tcp, Eth.size + IPv4.size)
    if tcp is None or tcp.flags < out.byte:
        return XDP_DROP
    delta: i32 = out.shalf
    out.wide = tcp.header_len()
    out.sword = 121
    limit = tcp.seq
    delta2: i64 = -i16(53)
    for i in range(1, 8, 2):
        out.wide = 65
    out.byte = out.byte - out.byte
    shim = pkt.header(Shim, ipv4_checksum(pkt, Eth.size) & 63)
    if shim is not None:
        seen = slots.set((out.half - 207) % 3, Stats(last=limit)) and out.flag
    return XDP_DROP


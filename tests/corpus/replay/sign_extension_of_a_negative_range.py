"""A campaign program (seed 20261211, number 70033) on which the replay counted 9,079 of the
kernel's 18,012 instructions for `rx`. `min(trace.sword, -2, ...)` compiles to a sign
extension `r4 <<= 32; r4 s>>= 32` of `w4 s>>= 31` (-1 or 0): 6.18 keeps the negative 32-bit
range through `<< 32` (a stable fix of the sign extension; earlier kernels kept only a
non-negative one), so it decides `if r1 s< r2` against -2 and makes the operands precise
back to the loop's states. The replay lost the range, could not decide, left them imprecise
and pruned a state at the jump after the shift that the kernel walks on."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, csum_replace16, ETH_P_IP, IPPROTO_TCP

LIMIT: u16 = 545
MASK: i32 = 64


class Flow(Struct):
    count: u64
    total: u32

    def span(self) -> bool:
        return u8(8) + u8(127) >= self.total


class Stats(Struct):
    count: bool
    total: i64
    last: u16
    seq: bool
    flags: u64


class ConnKey(Struct):
    count: bool
    total: i64

    def span(self) -> u32:
        return LIMIT + LIMIT if MASK > -1 else 38 & LIMIT


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

    def total(self) -> bool:
        return not self.flag


slots = ArrayMap(Flow, max_entries=2)
flows = HashMap(ConnKey, Flow, max_entries=64)
recent = LruHashMap(u32, Flow, max_entries=4096)
traces = ArrayMap(Trace, max_entries=1)


def update(a: bool, trace: Trace) -> u64:
    trace.sbyte //= trace.sbyte // (i8(-7) + 1)
    if True:
        trace2 = traces.get(min(trace.word, trace.word) & 0)
        if trace2 is not None:
            trace.flag = traces.replace(0, trace2)
    trace.word = 123
    trace.seq ^= trace.word
    key = ConnKey(count=bool(trace.word), total=min(trace.sword, -2, trace.swide) & 1)
    flow = flows.get(key)
    if flow is None:
        flows.insert(key, Flow(count=random_u32(), total=max(trace.byte, 48)))
        flow = flows.get(key)
        if flow is None:
            return min(trace.half, trace.wide % trace.byte, trace.byte)
    trace.wide |= u64(trace.shalf)
    return LIMIT


def classify(pkt: Packet, a: u8, b: u16, c: u64, stats: Stats, trace: Trace) -> None:
    trace.swide ^= stats.total // -1
    limit = a
    trace.sword = trace.sword
    c = (trace.byte if 106 == trace.shalf else u64(0x7FFFFFFF)) // LIMIT
    update(trace.byte < u16(1000), Trace(wide=b ^ stats.flags, swide=stats.total, sbyte=i8(100) & trace.sbyte, seq=csum_replace16(b, limit, trace.half)))
    limit2 = trace.sword // trace.sbyte
    eth = pkt.header(Eth, 0)
    if eth is not None:
        trace.byte = eth.src[2]
        flows.insert(ConnKey(total=trace.shalf & 1), Flow(count=c, total=trace.seq))
    return


@xdp
def rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_DROP
    out.sbyte += out.sbyte - out.sbyte
    out.flag = bool(out.byte)
    out.wide += out.wide if out.byte == out.seq else out.seq
    flow = recent.get(3)
    if flow is not None and out.byte != out.half:
        out.sbyte = out.sbyte
        out.byte += u8(out.shalf)
        tcp = pkt.header(Tcp, Eth.size + IPv4.size)
        if tcp is None:
            return XDP_PASS
    update(flow is not None and out.flag, Trace(wide=pkt.len, swide=out.sword >> out.byte, sword=out.shalf, half=out.byte << 200, shalf=out.sbyte + out.sbyte, sbyte=out.sbyte if out.byte < out.byte else out.sbyte, seq=pkt.checksum(LIMIT, out.half), flag=out.flag))
    return XDP_ABORTED


@xdp
def classify_rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_DROP
    out.half += u16(u16(out.seq))
    out.sword += ~out.sword
    out.word ^= out.seq % pkt.ifindex
    out.shalf ^= out.shalf >> 32
    update(out is not None, out)
    conn = ConnKey(count=True, total=out.sword)
    out.sbyte >>= 28
    delta = MASK
    if bool(out.byte):
        val = out.half
        key: u32 = pkt.ifindex & 3
        flow = recent.get(key)
        if flow is None:
            recent.set(key, Flow(total=out.byte + out.byte))
            flow = recent.get(key)
            if flow is None:
                return XDP_TX
        ip = pkt.header(IPv4, Eth.size)
        if ip is not None and ip.protocol == IPPROTO_TCP:
            key = out.word ^ ip.frag_off
            diff = ip.tos
        out.sword += out.sword ^ 0
    else:
        out.swide ^= out.shalf
    out.sbyte ^= i8(delta)
    return XDP_REDIRECT if conn.count else XDP_REDIRECT

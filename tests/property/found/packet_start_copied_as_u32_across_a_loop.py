"""Verifier rejection of a checker-accepted program: "R4 invalid mem access 'scalar'".

In `classify_rx` the packet's start, loaded (the context's u32) for `pkt.len` before the
loop and again for the view inside it, was merged by LLVM into one value carried around
the loop and copied with a 32-bit move: the verifier then holds a number, not a packet
pointer, and refuses the read through `ip`. Seen once views at constant offsets lost
their barriers; the packet's bounds are now loaded where they are used, every time."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, csum_replace16

LIMIT: i32 = 0
MASK = 1622


class Flow(Struct):
    count: u32
    total: u32
    last: bool

    def span(self) -> i32:
        return LIMIT


class Stats(Struct):
    count: u32
    total: u32


class Conn(Struct):
    count: u32
    total: u32
    last: Flow


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
    count: u8
    total: u8


class Tag(Header):
    count: bool
    total: bool

    def span(self) -> u32:
        return min(u8(0x7FFFFFFF) + 246, 176)


totals = PerCpuArray(Flow, max_entries=4)
traces = ArrayMap(Trace, max_entries=1)
ports = DevMap(max_entries=4)


@xdp
def rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_PASS
    out.wide ^= pkt.checksum(out.word & 63, 64, pkt.len)
    out.byte ^= 177
    out.sword ^= out.sword + out.sword
    out.flag = out.wide == out.word
    out.half ^= -out.half
    out.word ^= out.word - out.half
    trace = traces.get(0)
    if trace is None or out.sword == out.sword:
        return XDP_PASS
    for i in range(0, 5, 2):
        if (out is None and True) == (out is None):
            break
        atomic_add(out.wide, i)
        trace.shalf += out.shalf + (out.shalf << i)
        shim = pkt.header(Shim, u32(258) & 63)
        if shim is not None and i == 0:
            n: u8 = 0
            if out.flag:
                break
            n2 = u8(n + trace.seq)
    return XDP_PASS


@xdp
def classify_rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_PASS
    out.swide ^= 0x8000
    out.seq ^= pkt.len << out.wide
    out.shalf ^= out.shalf * 0
    out.wide ^= atomic_add(out.wide, out.wide)
    out.sbyte ^= 0 & out.sbyte
    out.sword ^= min(out.sword + 0, out.sword)
    out.swide ^= 103
    out.seq ^= csum_replace16(out.half - 31, u16(MASK) - out.byte, out.byte)
    total = i8(pkt.len) * out.shalf
    for k in range(1, min(u32(out.byte), 16)):
        ip = pkt.header(IPv4, Eth.size)
        if not ip:
            continue
        flag = False
        out.swide &= i32(86)
        for i in range(3):
            out.half ^= 0 ^ ip.ttl
    eth = pkt.header(Eth, 0)
    if eth is None:
        return XDP_REDIRECT
    shim = Shim(total=0)
    out.sword ^= total
    return ports.redirect(0, XDP_PASS)

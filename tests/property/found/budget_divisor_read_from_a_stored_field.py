"""Found by the campaign of seed 20261211 (program 6657): `out.word += ipv4_checksum(pkt,
out.word & 63)` then `0xFFFFFFFF // out.word` in `classify_rx`. The divisor is a map
value's field, which LLVM keeps in a register: its zero test makes the stored sum
precise, back into the checksum's loop, whose per-element states then stay apart. The
source model followed precision through variables only, not through a field stored and
read back: 1,717 for the kernel's 2,243 (1.31x under)."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, csum_replace32, ipv4_checksum, ETH_P_IP


class Flow(Struct):
    count: u8
    total: be16


class Stats(Struct):
    count: i64
    total: i16


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

    def total(self) -> u32:
        return self.byte ^ self.half if self.flag else u32(self.sbyte)


class Shim(Header):
    count: be16
    total: u8


class Tag(Header):
    count: i16
    total: u8
    last: u16


slots = ArrayMap(Stats, max_entries=2)
flows = HashMap(u8, Flow, max_entries=8)
traces = ArrayMap(Trace, max_entries=1)


def update(pkt: Packet, a: u8, b: u64, c: i64) -> u8:
    if u8(c) > min(a, a):
        ip = pkt.header(IPv4, Eth.size)
        if ip is None:
            return a
        ip2 = pkt.header(IPv4, Eth.size)
        if bool(u16(0x7FFF)):
            pkt.resize_head(-8)
            trace = traces.get((a if True else 222) & 0)
            if trace:
                c >>= trace.sbyte * trace.sbyte
                trace.sword = trace.sword ^ trace.sbyte
                trace.half = csum_replace32(trace.byte, a, trace.byte)
            return a
    else:
        pass
    return -(a if i8(8) <= i32(-0x8000) else a)


def classify(trace: Trace) -> u64:
    for j in range(16):
        delta = trace.sword
    stats = slots.get(random_u32() & 1)
    if stats is not None:
        trace.seq ^= trace.seq
    if not stats:
        return trace.wide
    n = (trace.seq - trace.seq) << 200
    return trace.half


@xdp
def rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_DROP
    out.word += -pkt.ifindex
    out.shalf += out.shalf if seq_after_eq(pkt.ifindex, out.half) else 3
    out.sbyte = out.sbyte << 255
    out.byte += 1 * out.byte
    out.swide = out.swide
    shim = Shim()
    if out.shalf == min(out.sbyte, out.sword, out.sbyte):
        classify(out)
        out.wide %= u64(shim.total) * pkt.len
        out.wide ^= min(out.wide, 0xFFFF, pkt.len)
        atomic_add(out.swide, out.shalf - 144)
    classify(out)
    diff: u8 = out.byte
    out.half ^= ~shim.count
    flow = flows.get(out.byte & 3)
    if flow is None:
        return XDP_ABORTED if out.seq != 195 else XDP_PASS
    flow.total //= out.byte - shim.count
    eth = pkt.header(Eth, 0)
    if eth is not None:
        flow2 = flows.get(1)
        out.flag = True
        if flow2 is None or shim.total < shim.total:
            return XDP_REDIRECT
    out.swide ^= i64(diff)
    return XDP_ABORTED


@xdp
def classify_rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_PASS
    out.word += ipv4_checksum(pkt, out.word & 63)
    out.sword ^= out.shalf & out.sbyte
    out.sbyte += out.sbyte | 2
    out.wide += 0xFFFFFFFF // out.word
    out.shalf = max(out.shalf, out.sbyte, out.sbyte)
    pass
    return XDP_REDIRECT

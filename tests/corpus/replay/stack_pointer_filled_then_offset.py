"""A campaign program (seed 20261209, number 92023) on which the replay counted 376 of the
kernel's 624 instructions for `rx`. The compiled hook spills a pointer into the stack
(`*(u64 *)(r10 -48) = r3`, r3 = fp-21), fills it later and adds a packet-derived offset before
reading a byte through it. The replay's static stack liveness turned the filled pointer
(which may point anywhere in the frame) into "not a stack pointer" at that add, so the read
marked no slot live, and the replay pruned a state at the branch after the shim's byte load
on a slot whose bytes differed (zero on one path, unknown on the other): the kernel explores
it."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, Udp

LIMIT = 4389
MASK = 2765


class Flow(Struct):
    count: u32


class Stats(Struct):
    count: Flow


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
    count: i16
    total: bool
    last: Array[u8, 6]


flows = HashMap(u8, Stats, max_entries=4)
slots = ArrayMap(Flow, max_entries=3)
traces = ArrayMap(Trace, max_entries=1)


@xdp
def rx(pkt: Packet) -> int:
    if not pkt.rx_queue <= pkt.len:
        trace = traces.get(0)
        if not trace:
            return XDP_ABORTED
        shim = Shim(count=trace.sbyte & trace.sbyte, total=trace.byte >= trace.half or trace.byte > trace.byte)
        trace.seq = trace.byte
        trace.byte = max(u8(0), trace.byte if 20 > shim.last[pkt.len] else shim.last[trace.shalf // trace.sbyte], 31)
    elif u8(1) % u16(141) != u8(64) ^ 7:
        stats = flows.get(2)
        if stats is None or bool(stats.count.count):
            return XDP_ABORTED if u16(18) == pkt.rx_queue else XDP_REDIRECT
        x = pkt.ifindex if pkt.len >= LIMIT else min(stats.count.count, pkt.rx_queue, stats.count.count)
        atomic_add(stats.count.count, stats.count.count | stats.count.count)
        seen: bool = x != u8(0x7FFFFFFFFFFFFFFF) and (x != pkt.len or stats is None)
    elif pkt.len <= pkt.ifindex and pkt.len > 61:
        n: u32 = (pkt.len >> 65) // random_u32()
        ip = pkt.header(IPv4, Eth.size)
        n %= n
        off: u32 = n
        return XDP_PASS
    hit: bool = True
    ip2 = pkt.header(IPv4, Eth.size)
    if not ip2:
        return XDP_ABORTED
    total = u8(i32(MASK)) << (MASK ^ i32(182))
    return XDP_DROP

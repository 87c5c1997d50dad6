"""A campaign program (seed 20261211, number 3510) on which the replay counted 167 of the
kernel's 263 instructions for `classify_rx`. A branch pushed near the start, when the
state's stack reached only fp-8, met at a join the state of a path that had spilled
registers further down; the kernel refuses that ("explored stack has more populated slots
than current stack": a state's stack is allocated down to the lowest byte its path
touched), the replay took the missing slots as unknown bytes and pruned."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Udp

LIMIT: i32 = 1
MASK: u32 = 3584


class Flow(Struct):
    count: i16
    total: u16
    last: be32


class Stats(Struct):
    count: bool
    total: Array[be16, 6]
    last: Array[u16, 2]
    seq: bool


class Conn(Struct):
    count: be16
    total: i16
    last: bool
    seq: Array[be16, 4]
    flags: i8

    def span(self) -> u64:
        return self.count


class Entry(Struct):
    lock: SpinLock
    count: Array[u8, 3]
    total: i8


class SlotKey(Struct):
    count: u64
    total: i8
    last: be32


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
    total: u8


class Tag(Header):
    count: bool
    total: u8

    def span(self) -> bool:
        return self.total < self.total


flows = HashMap(SlotKey, Entry, max_entries=8)
totals = PerCpuArray(Flow, max_entries=1)
traces = ArrayMap(Trace, max_entries=1)


def update(a: i64, b: i32, c: u8, stats: Stats) -> u8:
    flow = totals.get(0)
    if flow is None or bool(u8(-0x80000000)):
        return 136
    stats.count = traces.set(flow.last & 0, Trace(wide=c, swide=b, byte=c + c, seq=flow.total + stats.last[1])) or c < stats.total[5]
    stats.total[4] += (stats.last[1] if stats.count else 175) ^ -stats.last[1]
    c &= c | (c | c)
    if totals.set(flow.last & 0, flow):
        acc: u8 = c
        stat = stats
        stat.last[1] = max(~flow.total, 63, stats.total[3] - acc)
    return 100


def classify(slotkey: SlotKey) -> i32:
    x: u64 = 237
    for k in range(4):
        stat = Stats(count=False)
        trace = traces.get(0)
        if trace is not None and trace.flag:
            flows.set(SlotKey(total=trace.sbyte & 1, last=(u16(127) * stat.total[4]) & 1), Entry(total=slotkey.total * 63))
            size = trace.shalf
            if not (slotkey.total >= slotkey.total or stat.total[2] >= stat.last[0]):
                total = trace.sbyte
                x = u8(slotkey.last)
                trace.seq = atomic_add(trace.word, 276 if stat.count else MASK)
        else:
            pass
    return slotkey.total % slotkey.total


@xdp
def rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_DROP
    out.seq ^= pkt.checksum(Eth.size, IPv4.size, 0xFFFF)
    out.swide += out.swide if out.shalf == 3 else out.swide
    out.byte = out.byte | out.byte
    out.sbyte ^= out.sbyte
    n = i8(out.sbyte) - out.shalf
    out.wide = 232
    out.sbyte ^= i8(n)
    return XDP_PASS


@xdp
def classify_rx(pkt: Packet) -> int:
    classify(SlotKey(last=MASK + pkt.len))
    update(i64(pkt.len), i8(7) + LIMIT, u8(255) - u8(1), Stats(count=u8(0) == 42, seq=MASK == 100))
    shim = pkt.header(Shim, Eth.size + IPv4.size + Udp.size)
    if not shim:
        return XDP_TX
    return XDP_ABORTED

"""Refused by the kernel, "unreachable insn 82" (campaign seed 20261207, program 1612): the
peephole pass of decided branches made `if r1 > 0x0 goto` a goto because the stop of
`range(1, min(out.half >> LIMIT, 4))` is at most 1 here, and checked only that the
fall-through had another way in. It had one, the loop's own back edge: the loop became
reached by nothing but itself. Every decision is now checked against the function's
reachability."""
from etran.dsl import *
from etran.bpf_templates.headers import csum_fold

LIMIT: u16 = 2493


class Flow(Struct):
    count: u64
    total: Array[u8, 3]
    last: i32
    seq: i16


class Stats(Struct):
    count: Flow

    def total(self) -> u64:
        return (LIMIT if LIMIT == self.count.total[self.count.seq % self.count.last] else LIMIT) - 255


class Conn(Struct):
    count: be32


class Entry(Struct):
    lock: SpinLock
    count: u64
    total: be64


class Slot(Struct):
    count: u16
    total: u64
    last: u64
    lock: SpinLock


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
        return self.sbyte <= self.sbyte >> 2


class Shim(Header):
    count: be16
    total: Array[be16, 4]
    last: i16
    seq: Array[u8, 6]
    flags: u8


events = RingBuf(Conn, max_entries=4096)
flows = HashMap(u8, Entry, max_entries=64)
pending = Queue(Stats, max_entries=8)
flows2 = HashMap(u16, Slot, max_entries=8)
traces = ArrayMap(Trace, max_entries=1)
ports = DevMap(max_entries=4)


def update(a: u16, entry: Entry) -> u64:
    entry.total ^= -a
    a &= a
    if entry.total <= a:
        entry2 = flows.get(3)
        if entry2 is not None:
            entry2.total ^= entry.count if entry.total >= ~u8(64) else entry2.total
            item = pending.pop()
            if not item:
                return a
            with entry2.lock:
                total: u16 = -item.count.total[2]
                off = item.count.seq
                hit = entry2 is not None
                shim = Shim()
        else:
            pass
    elif bool(LIMIT) or entry.total != a:
        pass
    return LIMIT


def classify(flow: Flow, entry: Entry) -> i32:
    update(LIMIT - flow.total[1], entry)
    atomic_add(entry.count, csum_fold(LIMIT))
    flow.total[1] = flow.total[0] - flow.total[1] % flow.total[2]
    flow.total[1] *= flow.total[0]
    atomic_add(entry.count, entry.count)
    return i8(i16(120) << i8(76))


@xdp
def rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_PASS
    out.byte = out.byte ^ 1
    out.flag = out.shalf != 2
    out.sbyte += out.sbyte // out.sbyte
    out.wide ^= out.wide | out.seq
    for k in range(1, min(out.half >> LIMIT, 4)):
        limit = -(out.byte * u16(106))
        if not out.total():
            continue
        out.sword = out.shalf
        limit = limit
    out.wide = u8(out.byte if LIMIT <= u8(31) else u16(128))
    entry = flows.get(max(out.byte, out.byte) & 3)
    if entry is None:
        return XDP_REDIRECT
    x: u64 = 0
    with entry.lock:
        atomic_add(out.swide, i64(out.seq))
        size: i64 = i8(out.shalf) >> 16
    out.half ^= u16(x)
    return XDP_REDIRECT

"""A campaign program (seed 20261213, number 74055) on which the replay counted 2,926 of the
kernel's 5,707 instructions for `rx` (0.51: the only hook below the margin in that campaign
of 100,000 programs). The lowering of that commit (e019e86) compiled it to
tests/data/history_limit_after_a_pop.o, which the test replays: the current lowering
compiles this source to code the replay counts exactly. In the loop of `update`, a branch
pushed at `if r0 == 0x0` right after `bpf_map_pop_elem` is popped; further on, the kernel
forces a checkpoint at `if r8 == 0x10` because the path's jump history is longer than 40
entries, one entry longer than the replay's, and prunes against it. The replay now replays
such a hook a second time with that entry (`replay.FORCED_HISTORY`) and keeps the larger
count."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp


class Flow(Struct):
    count: Array[i64, 4]
    total: u16

    def span(self) -> i32:
        return i32(self.count[2]) | i32(i8(31))


class Stats(Struct):
    count: be64
    total: be16
    last: bool
    seq: Array[bool, 4]


class Conn(Struct):
    count: be16
    total: u64
    last: i32

    def span(self) -> u64:
        return u32(self.last)


class Deadline(Struct):
    count: i64
    due: i64
    sent: i32
    rto: Timer

    def total(self) -> u32:
        return 106


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
        return self.word >> self.word >> self.shalf


class Shim(Header):
    count: be32
    total: be32
    last: u16


class Tag(Header):
    count: i16
    total: be32
    last: Array[u8, 3]
    seq: Array[be16, 3]
    flags: u16


pending = Queue(Stats, max_entries=8)
slots = ArrayMap(Flow, max_entries=6)
deadlines = ArrayMap(Deadline, max_entries=4)
traces = ArrayMap(Trace, max_entries=1)


@timer(Deadline.rto)
def on_deadline(key: u32, value: Deadline) -> None:
    value.count += 1


def update(stats: Stats) -> u64:
    size = (0x8000000000000000 | stats.count) >> stats.total
    for k in range(16):
        deadline = deadlines.get(random_u32() & 3)
        if deadline is not None:
            stats.last = deadline.rto.cancel()
        item = pending.pop()
        if item is not None:
            for i in range(1, min(u8(15), 2)):
                item.last = False
                size = k
                if deadline is not None:
                    stats.seq[item.total + k] = item.seq[3]
    return stats.count


def classify(a: u8, b: i64, c: u64, shim: Shim, conn: Conn) -> u8:
    for j in range(1):
        conn.total //= u16(a)
        hit = True
        if u32(a) <= shim.total:
            break
        diff = a if not shim.last == conn.count else a << 200
    shim2 = shim
    conn.last ^= conn.last | -1
    return min(a | a, u8(-0x80000000) | u8(-7), a ^ a)


@xdp
def rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_DROP
    deadline = deadlines.get(3)
    if deadline is None:
        return XDP_DROP
    out.byte += out.byte + out.byte
    out.half = out.byte // (out.byte << out.seq)
    out.sbyte += out.sbyte << out.byte
    out.flag = out.shalf < deadline.sent
    out.word ^= random_u32()
    total = u64(out.byte) + out.half
    update(Stats(total=out.half, last=deadline is not None))
    out.shalf = out.sbyte
    trac = out
    tcp = pkt.header(Tcp, Eth.size + IPv4.size)
    item = pending.pop()
    if item is not None and True:
        trac.shalf += ~out.shalf
        if tcp is not None:
            off = tcp.doff_res | tcp.doff_res
        else:
            out.wide += out.word | (out.half % trac.byte)
            if tcp is None or not tcp.window < 0xFFFF:
                return XDP_ABORTED
        total = item.count
    deadline.rto.start(total)
    trac.seq ^= atomic_add(out.word, u16(15))
    limit = out.shalf << trac.word >> u32(trac.sbyte)
    atomic_add(out.wide, trac.half)
    out.sword ^= out.sword
    conn = Conn(count=48)
    eth = pkt.header(Eth, 0)
    trac.sword ^= i32(total)
    out.half ^= u16(limit)
    return XDP_REDIRECT


"""A campaign program (seed 20261211, number 86) on which the replay counted 9,015 of the
kernel's 12,345 instructions for `classify_rx`. `pkt_end - pkt` (the packet's length) is
an unknown scalar to the kernel (mark_reg_unknown); the replay called it "approx", a value
it may know less of than the kernel, which never matches a precise register, and kept a
state the kernel prunes. What followed differed enough that the replay ended lower."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, Udp


class Flow(Struct):
    count: i32


class Stats(Struct):
    count: bool


class Conn(Struct):
    count: Array[bool, 5]


class EntryKey(Struct):
    count: be64
    total: be32
    last: i16


class Deadline(Struct):
    rto: Timer
    count: u32
    due: u32
    sent: u32


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

    def total(self) -> u64:
        return self.wide // 0


class Shim(Header):
    count: u8
    total: be32
    last: i16
    seq: i16


pending = Queue(Conn, max_entries=2)
flows = HashMap(EntryKey, Conn, max_entries=64)
deadlines = HashMap(u16, Deadline, max_entries=64)
traces = ArrayMap(Trace, max_entries=1)


@timer(Deadline.rto)
def on_deadline(key: u16, value: Deadline) -> None:
    value.count += 1


def update(pkt: Packet) -> u32:
    conn = flows.get(EntryKey(count=min(u64(16), pkt.ifindex, pkt.len) & 1, total=pkt.rx_queue & 1, last=(i8(2) >> pkt.ifindex) & 1))
    if conn is not None:
        ip = pkt.header(IPv4, Eth.size)
        if ip is None:
            return pkt.len
        ip.src ^= ip.src - 1
    ip2 = pkt.header(IPv4, Eth.size)
    deadline = deadlines.get(0)
    if deadline is not None:
        if deadline.rto.cancel():
            deadline.count ^= u8(deadline.sent)
    diff = pkt.ifindex
    udp = pkt.header(Udp, Eth.size + IPv4.size)
    if udp is None:
        return pkt.len
    return min(udp.dst_port, diff) % 16


def classify(a: i32) -> i32:
    for k in range(16):
        item = pending.pop()
        trace = traces.get(k & 0)
        if trace is None:
            return i16(k)
        if item is None or not trace.sbyte >= trace.sbyte:
            break
        deadline = deadlines.get(trace.half & 3)
        if deadline is not None:
            if deadline.rto.cancel():
                trace.sword ^= atomic_add(trace.sword, trace.sbyte)
    pending.push(Conn())
    trace2 = traces.get(random_u32() & 0)
    if trace2:
        delta = trace2.word
        trace3 = traces.get(-trace2.word & 0)
        if trace3 is not None and seq_before_eq(trace2.byte, trace3.byte):
            trace2.shalf = trace3.shalf
        else:
            pass
    return a if trace2 is not None else i16(a)


@xdp
def rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_DROP
    deadline = deadlines.get(3)
    if deadline is None:
        deadlines.set(3, Deadline())
        deadline = deadlines.get(3)
        if deadline is None:
            return XDP_DROP
    if not deadline.rto.start(out.wide):
        out.flag = bool(out.seq)
    out.sbyte ^= out.sbyte * out.sbyte
    out.shalf ^= out.shalf
    out.swide = out.sword
    out.word += max(deadline.due, out.half, deadline.count)
    out.half ^= out.half | out.byte
    deadline.sent = atomic_add(deadline.sent, deadline.count)
    out.shalf = out.sbyte
    deadline.count = u16(out.sbyte)
    out.wide += out.wide % 0xFFFFFFFFFFFFFFFF
    out.byte = out.byte & out.byte
    out.shalf = i16(-129)
    if 61 >= out.shalf << out.sbyte:
        atomic_add(deadline.sent, update(pkt))
        out.swide = out.swide
        out.byte = ~(-out.byte)
        return XDP_PASS
    else:
        out.seq ^= ~pkt.rx_queue
        return XDP_ABORTED


@xdp
def classify_rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_PASS
    deadline = deadlines.get(1)
    if deadline is None:
        deadlines.set(1, Deadline())
        deadline = deadlines.get(1)
        if deadline is None:
            return XDP_PASS
    out.flag = deadline.rto.start(out.wide)
    out.word = pkt.checksum(0, pkt.len, out.seq)
    out.seq ^= out.byte >> out.word
    out.swide = i8(-128 > out.sbyte)
    tcp = pkt.header(Tcp, Eth.size + IPv4.size)
    if tcp is None or deadline is None:
        return XDP_PASS
    if not traces.replace((out.seq // out.byte) & 0, Trace(word=tcp.ack_seq, sword=out.shalf * 28, shalf=max(out.shalf, out.sbyte, out.sbyte), seq=update(pkt))):
        return XDP_TX if out.sword > out.sbyte else XDP_ABORTED
    return XDP_TX

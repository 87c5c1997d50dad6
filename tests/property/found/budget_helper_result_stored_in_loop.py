"""Found by the campaign of seed 20261209 (program 39654): a map update's result stored as
a record's bool field, the record output to a ring buffer, 87 times in a loop (`rx`). The
call returns an error code, so the bool is chosen by a branch on it, and each iteration
carries more states on (the stack byte is zero on one side, unknown on the other). The
source model counted no branch there: 8,456 for the kernel's 10,918 (1.29x under). The
replay under-counted it too (9,096): its stack liveness read every slot from a ring-buffer
record up to the frame, and kept apart states the kernel prunes."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, csum_fold

LIMIT: i32 = 3


class Flow(Struct):
    count: be32
    total: bool


class Stats(Struct):
    count: u64
    total: Array[u32, 5]
    last: bool
    seq: u64

    def span(self) -> i32:
        return ~LIMIT + LIMIT


class Deadline(Struct):
    count: u32
    due: u64
    rto: Timer


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


class Tag(Header):
    count: i16
    total: be16
    last: u16
    seq: i16

    def span(self) -> u64:
        return u64(u16(self.last != self.last))


flows = HashMap(u8, Flow, max_entries=8)
events = RingBuf(Stats, max_entries=4096)
recent = LruHashMap(u16, Flow, max_entries=4096)
deadlines = HashMap(u32, Deadline, max_entries=64)
traces = ArrayMap(Trace, max_entries=1)
ports = DevMap(max_entries=4)
xsks = XskMap(max_entries=4)


@timer(Deadline.rto)
def on_deadline(key: u32, value: Deadline) -> None:
    value.count += 1


def update(a: u32, b: bool) -> u32:
    if a << 0 <= u8(170):
        a = a
        off = a
        if False:
            flows.replace(16 & u8(125), Flow(count=a | a, total=bool(off)))
            trace = traces.get(off)
            if trace is None or (trace.byte >= trace.byte or trace.flag):
                return csum_fold(off) + a
            trace.sbyte += max(trace.sbyte, trace.sbyte, trace.sbyte)
        else:
            flow = Flow(count=off)
            flow.total = a > min(flow.count, u64(-1), 255)
            acc = a
            return off
    elif b:
        pass
    else:
        pass
        return (a << 127) ^ (a * a)
    return a


@xdp
def rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_PASS
    deadline = deadlines.get(2)
    if deadline is None:
        deadlines.set(2, Deadline())
        deadline = deadlines.get(2)
        if deadline is None:
            return XDP_PASS
    out.sword ^= ~out.sbyte
    out.wide += out.wide * out.seq
    out.shalf ^= out.shalf if seq_before(out.seq, pkt.ifindex) else 3
    out.half += out.byte ^ 1
    for r in range(87):
        events.output(Stats(last=deadlines.replace(pkt.rx_queue + out.word, Deadline(count=u16(out.half)))))
    eth = pkt.header(Eth, 0)
    if eth is not None and out is not None:
        out.byte ^= 255 // eth.src[0]
        deadline2 = deadlines.get(-eth.dst[0])
        if deadline2 is not None:
            if not deadline2.rto.cancel():
                out.word ^= pkt.rx_queue
        trace = traces.get(eth.dst[5] & out.seq & 0)
        if trace is None or trace.flag:
            return XDP_TX
    else:
        shim = pkt.header(Shim, pkt.len - Shim.size)
        if shim is None or events.output(Stats()):
            return XDP_REDIRECT
        out.word ^= 0
    seen = out.sword > out.sword
    key: u16 = out.byte & 3
    flow = recent.get(key)
    if flow is None:
        recent.insert(key, Flow(count=max(out.seq, key)))
        flow = recent.get(key)
        if flow is None:
            return XDP_DROP
    deadline3 = deadlines.get(u8(out.seq) & 3)
    if deadline3 is not None:
        out.flag = deadline3.rto.cancel()
    return ports.redirect(pkt.ifindex & 3, XDP_DROP)


@xdp
def classify_rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_PASS
    out.swide ^= out.sbyte >> out.sbyte
    out.seq ^= 64
    out.flag = out.seq <= 3
    out.swide += -out.sword
    out.wide += out.wide % out.half
    out.byte += u8(out.byte == out.byte)
    out.sword ^= out.sbyte
    out.word = out.seq | pkt.len
    out.word = pkt.len
    ip = pkt.header(IPv4, Eth.size)
    if not ip:
        return XDP_REDIRECT
    acc = u32(ip.id) << ip.ver_ihl
    shim = pkt.header(Shim, ip.ttl & 63)
    deadline = deadlines.get(out.byte)
    if deadline is not None:
        if deadline.rto.start(out.seq):
            out.shalf = out.shalf - 0
    out.sbyte ^= out.sbyte & 3
    n = out.byte
    out.flag = out.shalf == 2
    out.shalf ^= i16(acc)
    out.half ^= n
    return XDP_REDIRECT

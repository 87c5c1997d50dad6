"""A campaign program (seed 20261211, number 8729) on which the replay counted 157 of the
kernel's 256 instructions for `classify_rx`. A record built on the stack holds a narrow
spill of a constant (2 bytes at fp-8) next to zero bytes; writing other data into that slot
scrubs the whole slot in the kernel (scrub_spilled_slot: the zero bytes become unknown), the
replay kept the zeros, read one back as 0 and decided a branch the kernel explores."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp


class Flow(Struct):
    count: u16
    total: be16
    last: bool

    def span(self) -> u64:
        return 0xFFFF


class Stats(Struct):
    count: i16
    total: be64


class ConnKey(Struct):
    count: u64
    total: i8


class Deadline(Struct):
    rto: Timer
    count: u64
    due: i32

    def total(self) -> u32:
        return ~(u16(188) + u8(8))


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
    count: u16
    total: be32


flows = HashMap(ConnKey, Stats, max_entries=4)
per_cpu = PerCpuHashMap(u32, Flow, max_entries=64)
flows2 = HashMap(u32, Flow, max_entries=64)
slots = ArrayMap(Stats, max_entries=7)
deadlines = ArrayMap(Deadline, max_entries=1)
traces = ArrayMap(Trace, max_entries=1)


@timer(Deadline.rto)
def on_deadline(key: u32, value: Deadline) -> None:
    value.count += 1


@xdp
def rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_PASS
    deadline = deadlines.get(0)
    if deadline is None:
        return XDP_DROP
    if not deadline.rto.start(out.wide):
        out.seq ^= -out.byte
    out.shalf = out.shalf ^ out.sbyte
    out.flag = out.half < out.seq
    out.byte += 0 * out.byte
    conn = ConnKey(count=deadline.total(), total=out.sbyte)
    return XDP_TX


@xdp
def classify_rx(pkt: Packet) -> int:
    delta = pkt.len
    flow = Flow(count=15, total=u8(65) << delta, last=False)
    eth = pkt.header(Eth, 0)
    if eth is None:
        return XDP_DROP
    eth.src[3] ^= eth.src[3] & eth.src[4]
    flow2 = flow
    per_cpu.set(1, flow)
    off = flow2.count & eth.dst[1] if flow.last else flow.count
    per_cpu.replace(1, flow2)
    ok = -pkt.len == (eth.dst[0] if flow.last else flow.count)
    trace = traces.get(pkt.rx_queue & 0)
    if trace is not None:
        deadline = deadlines.get(0)
        if deadline is not None:
            if deadline.rto.cancel():
                trace.swide ^= trace.sword
        if deadline is not None:
            deadline2 = deadlines.get(0)
            shim = pkt.header(Shim, off & 63)
            trace.sword = i16(i8(flow.count))
        else:
            if deadline is None:
                return XDP_ABORTED
            deadline3 = deadlines.get(0)
            if deadline3 is None:
                return XDP_ABORTED
        slots.set((eth.proto << 65) % 7, Stats(count=trace.shalf, total=u64(trace.half)))
    eth.dst[2] = 48 ^ u8(flow2.count)
    tcp = pkt.header(Tcp, Eth.size + IPv4.size)
    return XDP_ABORTED

"""A campaign program (seed 20261211, number 40939) whose `rx` the source model estimated at
3,342 for the kernel's 4,178. `update()` runs a loop of 16 with a loop inside it whose bound
is known only at run time (`range(1, min(trace.byte >> 3, 2))`): each outer turn leaves
paths that ran the inner loop a different number of times, one more state carried into
the next turn, so the kernel's count grows with the square of the outer bound (4,178 at
16 turns, 12,850 at 32). The model counted no branch for a nested loop."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, csum_fold


class Flow(Struct):
    count: Array[bool, 2]
    total: i32
    last: i64
    seq: Array[u16, 3]


class Stats(Struct):
    count: u32
    total: bool
    last: be64

    def span(self) -> bool:
        return (self.count <= 0xFFFFFFFF and self.total) or (i16(-7) < i64(269) or self.count >= u8(19))


class Conn(Struct):
    count: i16
    total: u64
    last: bool
    seq: Array[bool, 2]
    flags: u32


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
    count: Array[be16, 3]
    total: u8
    last: u16
    seq: u16
    flags: Array[u8, 3]


class Tag(Header):
    count: i16
    total: u8
    last: be32
    seq: bool
    flags: i16


pending = Queue(Stats, max_entries=8)
traces = ArrayMap(Trace, max_entries=1)


def update(a: u64, b: bool, trace: Trace, conn: Conn) -> None:
    for k in range(16):
        for j in range(1, min(trace.byte >> 3, 2)):
            pending.push(Stats())
            if traces.set(0, Trace(swide=trace.sword, word=128 & j, half=u8(trace.byte), byte=trace.byte)):
                break
            item = pending.pop()
            if item is not None:
                trace.flag = b
    stat = Stats(count=2 % trace.seq, last=trace.half)
    item2 = pending.pop()
    return


@xdp
def rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_PASS
    out.seq = 169
    out.half ^= u16(3)
    out.sword ^= i16(out.shalf)
    out.shalf ^= i16(out.sbyte)
    out.wide ^= u32(out.half) // csum_fold(out.byte)
    out.sbyte ^= 7 | out.sbyte
    out.byte += out.byte + out.byte
    if out.flag:
        tag = Tag(count=out.sbyte, total=u8(out.word))
        atomic_add(out.swide, out.shalf * -0x8000)
        update(out.seq + out.wide, traces.replace(0, Trace(sword=i16(tag.flags), shalf=~out.shalf, byte=out.byte ^ u8(149), sbyte=out.sbyte)), out, Conn(count=~tag.count, total=tag.total, last=out.flag))
        tcp = pkt.header(Tcp, Eth.size + IPv4.size)
        if tcp is not None:
            size = (out.sbyte >> tcp.check) - out.sbyte
            out.byte >>= 37
            tag.flags |= tag.count
    elif False:
        trace = traces.get(out.byte)
        if trace:
            traces.set(pkt.ifindex & 0, Trace(wide=u8(143) | 1, word=u8(True), half=trace.half, shalf=out.sbyte - trace.shalf, seq=out.byte, flag=True))
            if not (out.word < u32(256) or trace.flag):
                eth = pkt.header(Eth, 0)
                if eth:
                    trace.flag = True
                    trace.word = ~pkt.rx_queue
                    trace.word = (pkt.len >> 0) | eth.dst[2]
                return XDP_TX
            trace.byte = out.byte
        else:
            if trace is not None:
                tcp2 = pkt.header(Tcp, Eth.size + IPv4.size)
                if tcp2 is None:
                    return XDP_PASS
                val = trace.shalf
                flow = Flow(total=trace.shalf >> 0)
    else:
        out.swide ^= i8(18)
        out.seq = u16(1)
        out.seq = out.word * 0xFFFFFFFF
    return XDP_TX if out.flag else XDP_DROP


@xdp
def classify_rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_PASS
    out.half += out.half << out.half
    out.byte ^= out.byte ^ 1
    out.word ^= max(out.seq, random_u32())
    out.swide ^= out.shalf - -1
    out.sword = min(out.sword, out.sbyte)
    pass
    return XDP_ABORTED if out.flag else XDP_DROP

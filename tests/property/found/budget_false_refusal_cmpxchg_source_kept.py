"""Refused by `etran check`, accepted by the kernel (campaign seed 20261207, program 18788):
"`rx` leaves more than 8,192 branches waiting" on the replay over the compiled code, where
the kernel processed 468 instructions. The replay modelled `atomic_cas` (BPF_CMPXCHG) as
loading the old value into its source register too, like the other fetch forms; the kernel
leaves that register (the new value) alone. LLVM passed the loop's counter there, the
replay lost it and never left the loop."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, Udp


class Flow(Struct):
    count: Array[u8, 5]
    total: bool
    last: u8

    def span(self) -> i32:
        return i16(8) & (i16(66) // 58)


class Stats(Struct):
    count: bool
    total: i8
    last: be64
    seq: u32
    flags: be64

    def span(self) -> i32:
        return self.total


class Conn(Struct):
    count: Flow
    total: u64


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


flows = HashMap(u8, Stats, max_entries=4)
totals = PerCpuArray(Flow, max_entries=1)
traces = ArrayMap(Trace, max_entries=1)


def update(pkt: Packet, a: u32, flow: Flow, trace: Trace) -> u8:
    trace.sbyte += ~trace.sbyte
    totals.set(0, flow)
    size = flow.last
    flow2 = Flow(total=seq_after_eq(a, 0x7FFFFFFF), last=size ^ trace.byte)
    trace.byte += 255 & flow2.count[0]
    return size


@xdp
def rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_DROP
    out.shalf += out.shalf ^ 17
    out.word += atomic_xchg(out.word, update(pkt, out.seq | out.seq, Flow(total=out.sword <= out.sbyte and True, last=out.byte | 1), out))
    out.wide = out.byte - 128
    out.seq = -out.word
    out.sword = out.sword * out.sbyte
    udp = pkt.header(Udp, Eth.size + IPv4.size)
    if udp is None or out.flag:
        return XDP_DROP
    acc: u32 = udp.len ^ (u16(31) << out.sbyte)
    full = bool(out.seq) == False  # noqa: E712 (as generated)
    out.half ^= udp.len
    traces.replace(0, Trace(swide=atomic_cas(out.sword, out.sword, out.shalf ^ out.sword), sword=out.shalf >> u16(65535), half=udp.src_port))
    atomic_cas(out.swide, 0, out.sbyte + out.sbyte)
    update(pkt, acc, Flow(total=out.byte >= out.byte, last=out.byte), out)
    update(pkt, u16(out.half), Flow(last=u8(15)), Trace(byte=out.byte, seq=out.half))
    out.swide ^= out.sword
    flows.delete(u8(udp.dst_port) & 3)
    for j in range(min(out.byte, 4)):
        if not pkt.resize_tail(4):
            continue
        acc &= out.byte ^ atomic_cas(out.word, out.seq & out.seq, j if full else j)
        hit = full
        acc = out.word
    acc <<= 23
    val: u64 = out.word >> 200
    out.flag = full
    out.seq ^= pkt.rx_queue % out.word
    tcp = pkt.header(Tcp, Eth.size + IPv4.size)
    out.word ^= acc
    out.half ^= u16(acc)
    return XDP_REDIRECT if bool(out.wide) else XDP_TX

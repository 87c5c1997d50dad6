"""Refused by `etran check`, accepted by the kernel (campaign seed 20261208, program 14727):
"`rx` needs about 536 bytes of stack" by the source estimate, which adds up every struct a
hook and its inlined calls build (392 + 3 x 32 + 48 for spills), where the compiled hook
uses 160: LLVM keeps most of them in registers or shares their slots. A hook over the
source estimate now gets the compiled frame as a second opinion."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, Udp, TCP_FIN, TCP_RST

LIMIT: i32 = 0


class Flow(Struct):
    count: Array[i64, 6]
    total: be64
    last: u64
    seq: be16
    flags: be64


class Stats(Struct):
    count: i32
    total: u64
    last: Array[bool, 6]
    seq: bool


class Conn(Struct):
    count: i8
    total: Stats


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
    total: u8
    last: u16


slots = ArrayMap(Stats, max_entries=7)
flows = HashMap(u16, Conn, max_entries=64)
traces = ArrayMap(Trace, max_entries=1)


def update(pkt: Packet, a: u64, b: u16, flow: Flow) -> u64:
    tcp = pkt.header(Tcp, Eth.size + IPv4.size)
    if tcp is not None:
        for k in range(min(i16(-0x8000) % i16(0x80000000), 16)):
            slots.replace((flow.seq + u16(0x7FFFFFFF)) % 7, Stats(total=0xFFFF, seq=True))
            grown = pkt.resize_tail(-4)
            off = k
    grown2 = pkt.resize_tail(-20)
    acc: u64 = (b if grown2 else flow.last) & 127
    acc2: u16 = flow.seq
    return -flow.seq << 127


@xdp
def rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_PASS
    out.seq ^= pkt.checksum(Eth.size + IPv4.size + Udp.size, pkt.len, pkt.ifindex)
    out.wide ^= out.word | out.wide
    out.byte ^= u8(out.sword != -1)
    out.sword ^= (LIMIT if out.flag else out.sword) - (out.shalf ^ LIMIT)
    out.shalf += i8(out.half) + 13
    out.seq = out.seq << 8
    out.half += out.byte // out.half
    out.sbyte ^= out.sbyte * out.sbyte
    eth = pkt.header(Eth, 0)
    if eth is None:
        return XDP_TX
    for i in range(8):
        flows.insert(0, Conn(count=out.sbyte, total=Stats(count=out.sword, total=eth.proto, seq=True)))
        eth.src[1] *= u8(~out.byte)
        size: u32 = 175
        shim = Shim(count=u8(False), last=128)
    update(pkt, eth.src[0], out.half, Flow(total=eth.dst[5] >> out.byte, last=update(pkt, update(pkt, eth.proto, u16(out.flag), Flow()), out.byte, Flow()), seq=u8(8), flags=out.byte))
    out.swide = out.shalf >> out.sbyte
    out.byte = u8(u16(out.seq))
    out.swide = -128 // out.sbyte
    out.swide = out.sbyte % LIMIT
    out.seq = out.half
    return XDP_DROP


@xdp
def classify_rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_PASS
    out.word ^= pkt.len << 33
    out.swide += max(out.swide, out.sbyte, out.swide)
    out.flag = slots.replace(~out.seq % 7, Stats(total=4))
    out.flag = bool(out.sword)
    out.half = u8(23)
    out.sword ^= out.shalf + out.sbyte
    tcp = pkt.header(Tcp, Eth.size + IPv4.size)
    if tcp is None or out.shalf <= out.swide:
        return XDP_PASS
    out.swide ^= -out.swide
    if tcp.has(TCP_FIN):
        atomic_add(out.sword, out.shalf << tcp.window)
        if out.half >= u8(1):
            for i in range(3):
                conn = flows.get(max(out.byte, tcp.urg_ptr, out.byte))
                if conn is not None:
                    seen = True
                else:
                    tcp.src_port = tcp.urg_ptr
                    eth = pkt.header(Eth, 0)
                    if eth is None:
                        continue
        else:
            pass
            return XDP_PASS
        return XDP_DROP
    return XDP_PASS

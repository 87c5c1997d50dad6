"""Verifier rejection of a checker-accepted program: "R1 offset is outside of the packet".

`classify_rx` checks a UDP view at offset 34 (its end, `data + 42`) and writes `tcp.ack_seq`
of a TCP view at 34 (also `data + 42`). With the packet's start loaded once and kept in a
register (a lowering tried and not adopted: docs/performance.md), LLVM computed the
address once and used one register for both; the verifier marks the register it compared
as past the packet's end on the failing side of the check, and refused the write through
it on a path it cannot rule out. Found by a 2,000-program campaign (seed 6464); kept so
that a lowering which shares the packet's start cannot bring it back."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, Udp

LIMIT: u16 = 1754
MASK = 1057


class Flow(Struct):
    count: i8
    total: i32
    last: Array[u16, 3]
    seq: bool


class Stats(Struct):
    count: i64


class Conn(Struct):
    count: u64

    def total(self) -> u64:
        return 63


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
    count: Array[u8, 3]
    total: u8
    last: i16
    seq: u8


class Tag(Header):
    count: be16


flows = HashMap(u64, Conn, max_entries=64)
traces = ArrayMap(Trace, max_entries=1)
ports = DevMap(max_entries=4)


def update() -> u32:
    key: u64 = LIMIT if i8(63) == i8(0x100000000) else 7
    conn = flows.get(key)
    if conn is None:
        flows.insert(key, Conn(count=random_u32()))
        conn = flows.get(key)
        if conn is None:
            return LIMIT
    for i in range(min(min(u8(-0x8000), u8(0xFFFFFFFF), u8(198)), 8)):
        for k in range(2):
            conn.count += conn.total()
            val = -(i8(113) >> 3)
            conn.count -= key + MASK
        conn.count = u64(i8(i))
        ok = True
    return LIMIT


def classify(pkt: Packet, a: u32, b: u8, c: u64, conn: Conn, trace: Trace) -> bool:
    update()
    return trace.flag


@xdp
def rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_PASS
    out.seq = out.seq
    out.sword = out.sword ^ 0x7FFFFFFF
    out.byte ^= (out.byte + out.byte) | (out.byte << out.sbyte)
    out.wide += 1 | out.byte
    out.sbyte ^= out.sbyte | max(out.sbyte, out.sbyte, out.sbyte)
    out.swide ^= out.swide << out.swide
    trace = traces.get(0)
    tcp = pkt.header(Tcp, Eth.size + IPv4.size)
    eth = pkt.header(Eth, 0)
    if eth is None:
        return XDP_PASS if out.flag else XDP_PASS
    tag = pkt.header(Tag, eth.src[2] & 63)
    if tag is None or flows.set(-eth.dst[3] & 3, Conn()):
        return ports.redirect(2, XDP_DROP)
    classify(pkt, 63, eth.src[eth.src[5]], u64(eth.src[0]), Conn(), out)
    return XDP_DROP


@xdp
def classify_rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_PASS
    out.word ^= pkt.checksum(Eth.size, IPv4.size, out.seq)
    out.half ^= min(out.half, u16(2))
    out.word ^= out.seq
    out.flag = out.shalf != out.shalf
    out.shalf ^= out.shalf & out.shalf
    out.wide ^= out.half
    out.seq += pkt.rx_queue - out.word
    tcp = pkt.header(Tcp, Eth.size + IPv4.size)
    if tcp is not None:
        out.sbyte ^= 96
        for i in range(16):
            shim = pkt.header(Shim, Eth.size + IPv4.size + Udp.size)
            if shim is None:
                return XDP_ABORTED if seq_after(tcp.urg_ptr, u8(139)) else XDP_DROP
            udp = pkt.header(Udp, Eth.size + IPv4.size)
            if not udp:
                continue
            udp.src_port |= tcp.doff_res << out.byte >> (16 // shim.total)
            tcp2 = pkt.header(Tcp, Eth.size + IPv4.size)
            if tcp2 is None or tcp.check >= tcp.ack_seq:
                continue
        tcp.ack_seq <<= 40
    out.shalf |= min(out.sbyte, out.sbyte) >> (out.sbyte ^ out.shalf)
    shim2 = pkt.header(Shim, Eth.size + IPv4.size + Udp.size)
    if shim2 is None:
        return XDP_TX if out.flag else XDP_TX
    out.half ^= u8(out.sword > 0xFFFF)
    return XDP_DROP

# {"idx": 938, "failure": "verifier"}
# load program 'classify_rx': rejected by the verifier: R1 offset is outside of the packet

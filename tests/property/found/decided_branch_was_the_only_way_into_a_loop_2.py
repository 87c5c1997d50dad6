"""Refused by the kernel in its observed build, "unreachable insn 218" (campaign seed
20261207, program 3767): the peephole pass of decided branches dropped a test whose
jumped-to side was reached by something else only through that side. Every decision is
now checked against the function's reachability."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, csum_fold, csum_replace32


class Flow(Struct):
    count: i32
    total: Array[bool, 4]


class Stats(Struct):
    count: Flow
    total: Flow


class ConnKey(Struct):
    count: i64
    total: be16


class Deadline(Struct):
    rto: Timer
    count: u64
    due: i32
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

    def total(self) -> u32:
        return ~self.seq if self.shalf != self.sbyte and self.flag else 157


slots = ArrayMap(Flow, max_entries=2)
slots2 = ArrayMap(Stats, max_entries=7)
events = RingBuf(Flow, max_entries=4096)
flows = HashMap(ConnKey, Flow, max_entries=64)
deadlines = ArrayMap(Deadline, max_entries=4)
traces = ArrayMap(Trace, max_entries=1)


@timer(Deadline.rto)
def on_deadline(key: u32, value: Deadline) -> None:
    value.count += 1


def update(a: i64, b: u64) -> u8:
    deadline = deadlines.get(csum_fold(u16(196)) & 3)
    if deadline is None:
        return ~(u8(15) - u8(1448))
    if not not 47 <= deadline.due:
        deadline2 = deadlines.get(csum_replace32(u8(255), deadline.sent, deadline.sent))
        if deadline2 is None:
            return u8(0x7FFFFFFFFFFFFFFF) << 0 >> 127
        deadline2.count = deadline2.sent
        if deadline2.rto.cancel():
            deadline2.due ^= deadline.due if deadline2.due < 0 else -0x80000000
        deadline2.count += deadline.count % deadline2.sent
    deadline3 = deadlines.get(3)
    if deadline3 is not None:
        if deadline3.rto.cancel():
            deadline3.sent += csum_fold(deadline3.sent)
    limit = u8(197)
    return 215


@xdp
def rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_DROP
    deadline = deadlines.get(2)
    if deadline is None:
        return XDP_PASS
    out.seq ^= pkt.checksum(Eth.size, IPv4.size, deadline.sent)
    out.flag = deadline.rto.start(out.wide)
    out.half = 32
    out.byte = out.byte
    out.word += pkt.ifindex >> 255
    out.sbyte ^= i8(31) // max(out.sbyte, out.sbyte)
    out.flag = pkt.len <= deadline.sent
    out.sword = deadline.due - out.sbyte
    out.swide += max(out.shalf, out.swide)
    for i in range(1, min(out.byte >> u32(170), 8)):
        hit = True
        stats = slots2.get(out.total() % 7)
        off: u32 = out.half
        hit = hit
    if out.sbyte >= i16(out.word):
        out.word |= 37
        off2 = -out.total()
        off2 -= csum_fold(off2 // 0)
    else:
        tcp = pkt.header(Tcp, Eth.size + IPv4.size)
        if tcp is not None:
            deadline.rto.start(out.wide)
            out.seq = deadline.sent * 0
            x = tcp.src_port ^ 237
        out.wide = deadline.count << out.byte
        if tcp is None or tcp.flags <= out.byte:
            return XDP_REDIRECT
    delta: u64 = 79
    out.shalf = out.shalf
    atomic_add(deadline.due, out.shalf + out.shalf)
    flow = Flow()
    flows.replace(ConnKey(count=out.shalf & 1, total=(out.byte + u16(31)) & 1), Flow(count=i16(31), total=flow.total))
    out.shalf ^= out.shalf - -2
    out.byte = out.byte // out.byte
    total: u32 = 108 if bool(out.seq) else 0xFFFF
    out.sbyte ^= i8(delta)
    out.wide ^= total
    return XDP_REDIRECT if pkt.len <= out.byte else XDP_PASS

"""Verifier rejection of a checker-accepted program: "R3 offset is outside of the packet".

The same as view_end_shared_with_a_field_address.py, through `ip.header_len()`: with the
packet's start kept in a register, a view's end and a field address merged into one
register, which the verifier marked past the packet's end on the failing side of a check
(2,000-program campaign, seed 6464)."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Udp, ETH_P_IP, IPPROTO_TCP


class Flow(Struct):
    count: Array[u16, 4]
    total: be32
    last: i32
    seq: i8
    flags: i8


class Stats(Struct):
    count: u32
    total: be32
    last: be64
    seq: Array[u16, 6]
    flags: bool


class Conn(Struct):
    count: u16


class EntryKey(Struct):
    count: u32
    total: u16
    last: i64

    def span(self) -> i32:
        return i8(0xFFFF) // -i16(0x8000)


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
    count: Array[be16, 5]


flows = HashMap(EntryKey, Stats, max_entries=4)
per_cpu = PerCpuHashMap(i32, Stats, max_entries=64)
pending = Queue(Stats, max_entries=2)
pending2 = Queue(Stats, max_entries=2)
traces = ArrayMap(Trace, max_entries=1)


def update(pkt: Packet) -> bool:
    trace = traces.get(0)
    if trace is not None:
        trace.wide = ~trace.seq * trace.seq
        ip = pkt.header(IPv4, Eth.size)
        pending.push(Stats(last=1))
    else:
        pkt.resize_head(-4)
        shim = pkt.header(Shim, Eth.size + IPv4.size + Udp.size)
        if not shim:
            return max(pkt.len, 289) > cpu_id()
    eth = pkt.header(Eth, 0)
    if not eth:
        return pkt.ifindex > pkt.ifindex or (i16(232) < i64(228) or eth is None)
    if trace is not None:
        trace.sword = trace.sword // -0x80000000
    else:
        pass
    return True


def classify(a: bool) -> u32:
    traces[max(u32(171), u8(210), u32(83)) & 0] = Trace(wide=u8(179), swide=i8(64), sword=i16(63), half=u8(63) + 131, shalf=208, sbyte=63, seq=222)
    for i in range(8):
        entr = EntryKey(total=u16(63) | 63)
        flows.replace(entr, Stats())
        atomic_add(entr.count, u32(61) if a else entr.total)
        size: u32 = -(-entr.total)  # noqa: B002 (as generated: `-(-x)` is negation twice)
    per_cpu.insert(-i8(0x100000000) & 3, Stats(total=random_u32(), last=u16(7) ^ 220))
    return u8(0x7FFF)


@xdp
def rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_PASS
    out.half ^= out.byte & out.half
    out.wide ^= out.wide >> out.shalf
    out.byte += u8(out.shalf)
    out.flag = out.sbyte >= 8
    shim = pkt.header(Shim, pkt.len - Shim.size)
    ip = pkt.header(IPv4, Eth.size)
    udp = pkt.header(Udp, Eth.size + IPv4.size)
    delta = out.sbyte ^ out.sbyte
    ok = out is not None
    eth = pkt.header(Eth, 0)
    if eth is None:
        return XDP_ABORTED if ok else XDP_DROP
    if not pkt.resize_tail(-1):
        return XDP_DROP
    ip = pkt.header(IPv4, Eth.size)
    if ip is None:
        return XDP_TX
    udp = pkt.header(Udp, Eth.size + ip.header_len())
    if udp is None:
        return XDP_TX
    eth = pkt.header(Eth, 0)
    if eth is not None and eth.proto == ETH_P_IP:
        item = pending.pop()
        delta *= i8(out.shalf)
        if item is None or out.sbyte > -128:
            return XDP_TX
    ip2 = pkt.header(IPv4, Eth.size)
    if ip2 is None or ip2.protocol != IPPROTO_TCP:
        return XDP_PASS if out.sbyte != 52 else XDP_DROP
    flows.replace(EntryKey(total=u16(294) & 1, last=0), Stats(total=ip.check % ip.frag_off, flags=ok))
    shim2 = pkt.header(Shim, pkt.len - Shim.size)
    if shim2 is None or out.sword >= 120:
        return XDP_ABORTED
    traces.set(0, out)
    udp2 = pkt.header(Udp, Eth.size + ip2.header_len())
    if udp2 is None:
        return XDP_DROP
    out.swide = min(out.swide, out.swide, out.sbyte)
    if eth is None:
        return XDP_REDIRECT
    atomic_add(out.word, udp2.len // 1)
    pending.push(Stats(last=out.wide - ip2.src))
    out.seq ^= udp.dst_port | out.seq
    out.word ^= u32(delta)
    return XDP_TX if bool(udp2.dst_port) else XDP_PASS

# {"idx": 1720, "failure": "verifier"}
# load program 'rx': rejected by the verifier: R3 offset is outside of the packet

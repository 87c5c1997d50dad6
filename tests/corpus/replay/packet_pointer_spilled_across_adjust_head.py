"""A campaign program (seed 20261211, number 34115) on which the replay counted 726 of the
kernel's 1,075 instructions for `rx`. `pkt.resize_head(200)` (bpf_xdp_adjust_head)
invalidates every packet pointer; for a privileged loader the kernel makes each an unknown
scalar (mark_reg_invalid), in spilled slots too, which stay spills. The replay turned the
spilled packet pointers into plain data (STACK_MISC), which an uninitialised slot of a
later state matches, and pruned at the instruction after the call a state the kernel
walks: there the old state's spill does not match the new state's empty slot."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, csum_replace16, ETH_P_IP

LIMIT: u16 = 0
MASK: u32 = 2808


class Flow(Struct):
    count: i8
    total: be16
    last: u8
    seq: u32


class Stats(Struct):
    count: Array[bool, 6]
    total: bool

    def span(self) -> u32:
        return MASK


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

    def total(self) -> i32:
        return self.shalf


class Shim(Header):
    count: bool
    total: u16
    last: Array[be16, 2]
    seq: bool
    flags: u16

    def span(self) -> i32:
        return i32(self.flags // 16)


slots = ArrayMap(Stats, max_entries=7)
slots2 = ArrayMap(Flow, max_entries=6)
traces = ArrayMap(Trace, max_entries=1)


def update(a: u64) -> i32:
    flow = slots2.get((LIMIT - 1000) % 6)
    if flow is None:
        return 208
    flow.count = flow.count
    shim = Shim(count=flow.count < flow.count, seq=32 != flow.count)
    delta: u16 = u8(-1) + (u8(108) if flow.total > flow.last else flow.last)
    trac = Trace(wide=shim.flags - u16(127), swide=flow.count // flow.count, half=delta if flow.count >= flow.count else flow.last, byte=flow.last & flow.last, sbyte=flow.count - 98, seq=u16(flow.last), flag=delta < 16)
    return trac.sword if trac.flag and False else shim.span()


@xdp
def rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_DROP
    out.swide = max(out.swide, 0, out.shalf)
    out.word ^= out.seq % 0
    out.wide = out.wide - out.word
    out.sbyte ^= out.sbyte & out.sbyte
    out.sword ^= out.shalf * out.sword
    out.byte += u8(out.swide >= out.swide)
    tcp = pkt.header(Tcp, Eth.size + IPv4.size)
    diff: u32 = LIMIT
    eth = pkt.header(Eth, 0)
    if eth is not None:
        seen: bool = not eth.dst[1] >= eth.src[0]
        total: u32 = MASK // 2
        seen = out is None
    else:
        val: u32 = pkt.checksum(u8(54), LIMIT) // diff
        slots.replace(0, Stats())
    diff2 = i32(out.sbyte) & out.shalf
    ip = pkt.header(IPv4, Eth.size)
    if ip is not None:
        diff >>= 9
        total2: u16 = 142 if i8(-1) < out.sbyte else 0x8000
        if eth is None or eth.proto != ETH_P_IP:
            return XDP_PASS
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_DROP
    if not pkt.resize_head(200):
        return XDP_PASS
    eth = pkt.header(Eth, 0)
    if eth is not None and eth.proto == ETH_P_IP:
        traces[MASK & 0] = out
        out.flag = True
        out.half += csum_replace16(eth.proto, eth.proto, eth.proto // eth.src[1])
    eth2 = pkt.header(Eth, 0)
    if eth2 is None:
        return XDP_PASS
    out.shalf ^= i8(out.half)
    out.seq ^= 2 + out.word
    shim = pkt.header(Shim, eth2.src[5] & 63)
    if shim is None:
        return XDP_DROP
    diff2 *= -diff2 // 3
    if eth is not None:
        eth.src[0] = -eth2.src[2]
        diff3 = u32(eth.dst[4] * LIMIT)
        flow = Flow(total=eth.dst[4] ^ eth2.proto)
    stats = slots.get(out.word | eth2.src[1])
    if stats is not None:
        trace = traces.get(out.word & 0)
        if trace is None or trace.byte == 100:
            return XDP_ABORTED
        eth3 = pkt.header(Eth, 0)
        if not eth3:
            return XDP_REDIRECT
    out.wide ^= diff
    out.word ^= u32(diff2)
    return XDP_ABORTED


@xdp
def classify_rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_DROP
    out.sbyte ^= out.sbyte if -1 != out.sword else out.sbyte
    out.word = ~out.seq
    out.sword ^= out.shalf // -2
    out.flag = pkt.len < 63 & out.byte
    out.shalf ^= out.sbyte << 7
    pass
    return XDP_ABORTED

"""A campaign program (seed 20261213, number 87829) the checker accepted and the kernel
refused: "R8 pointer arithmetic on map_value_or_null prohibited". `deadline2`, looked up
before a loop, is tested for None inside it and its timer cancelled after the test; the
address of `deadline2.rto` (the reference + 16) does not change from one turn to the next,
and once the back end had removed the `llvm.bpf.passthrough` anchor after the test,
MachineLICM hoisted the addition out of the loop, above the null test. Inside loops such
a use is now anchored with the inline-asm barrier, which the back end never moves."""
from etran.dsl import *
from etran.bpf_templates.headers import csum_replace16


class Flow(Struct):
    count: bool
    total: i8
    last: u32
    seq: i8


class Deadline(Struct):
    count: i64
    due: i64
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
    count: u16
    total: bool
    last: u16


totals = PerCpuArray(Flow, max_entries=3)
deadlines = ArrayMap(Deadline, max_entries=4)
traces = ArrayMap(Trace, max_entries=1)
ports = DevMap(max_entries=4)


@timer(Deadline.rto)
def on_deadline(key: u32, value: Deadline) -> None:
    value.count += 1


def update(a: u32, shim: Shim) -> None:
    trace = traces.get(0)
    if trace is not None:
        trace.word ^= trace.word << 0
        x: i32 = 210
        deadline = deadlines.get(1)
        if deadline is not None:
            if deadline.rto.cancel():
                trace.flag = bool(trace.shalf)
    deadline2 = deadlines.get((shim.count - shim.count) & 3)
    if deadline2 is not None:
        if deadline2.rto.cancel():
            shim.count ^= shim.last ^ shim.count
    trace2 = traces.get(0)
    if not trace2:
        return
    return


@xdp
def rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_DROP
    deadline = deadlines.get(3)
    if deadline is None:
        return XDP_PASS
    out.wide ^= pkt.checksum(pkt.rx_queue & 63, 64, 0x80008000)
    deadline.rto.start(out.wide)
    out.swide ^= deadline.count + out.swide
    out.shalf += 7 % out.sbyte
    out.sword = out.sbyte
    out.byte ^= out.byte if out.sbyte >= out.sbyte else 0
    out.wide ^= csum_replace16(out.half, out.half, out.half)
    deadline.count = 95
    traces.replace(pkt.len & 0, Trace(wide=out.byte | 21, word=out.seq, sword=out.sbyte << out.byte, half=out.byte << 15, byte=u8(out.byte), sbyte=min(out.sbyte, 93, out.sbyte), seq=out.seq // out.byte))
    deadline2 = deadlines.get(u32(out.swide) & 3)
    out.word = out.word
    for i in range(8):
        traces.set(0, Trace(wide=out.word if out.byte == out.word else out.wide, swide=out.sbyte ^ deadline.due, sword=min(out.shalf, 77), flag=True))
        if not deadline2:
            break
        deadline2.rto.cancel()
        shim = Shim(count=csum_replace16(out.byte, out.half, out.half))
    out.flag = deadline.rto.start(out.wide)
    n = out.word << 1
    x = out.sbyte
    out.half ^= u16(x)
    out.wide ^= u64(x)
    return XDP_REDIRECT

"""Verifier rejection of a checker-accepted program: "invalid size of register spill".

The packet's start is the context's u32 `data` field, zero-extended to a pointer. LLVM
knew the upper half was zero, kept only the u32 across the calls around `pkt.len` and
spilled it with a 32-bit store (`*(u32 *)(r10 -112) = r2`); the verifier refuses a
partial spill of a pointer. The 64-bit value now passes the inline-asm barrier before it
becomes a pointer (`ctx_pointer` in etran/lower/function.py). Program 26573 of the
campaign of seed 20261214, reduced."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Udp

MASK: u16 = 4810


class Trace(Struct):
    wide: u64
    word: u32
    half: u16
    shalf: i16
    byte: u8


class Shim(Header):
    count: u8


traces = ArrayMap(Trace, max_entries=1)


@xdp
def rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_DROP
    limit: u32 = out.word
    trace = traces.get((limit // 0) & 0)
    if trace is None or bool(trace.wide):
        return XDP_ABORTED
    shim = pkt.header(Shim, (MASK ^ MASK) & 63)
    if shim is not None:
        full = trace.word == atomic_add(trace.word, u8(100) if trace.shalf <= out.shalf else pkt.len)
    trace2 = traces.get(trace.half & 0)
    trace.wide += out.byte + 1
    if not shim:
        return XDP_TX
    return XDP_DROP


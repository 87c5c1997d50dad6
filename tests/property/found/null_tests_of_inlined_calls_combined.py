"""Verifier rejection of a checker-accepted program: "R0 pointer |= pointer prohibited".

Found by the campaign of seed 20261206 (program 16825), reduced: `update(update(n))` inlines
a function whose result depends on a null test twice; the two results feed one select,
and instruction selection tests `a | b` instead of each pointer (see
`null_tests_combined_through_selects.py`)."""
from etran.dsl import *


class Trace(Struct):
    byte: u8
    half: u16


traces = ArrayMap(Trace, max_entries=1)


def update(a: u16) -> u8:
    trace = traces.get((a - 0) & 0)
    if trace is None:
        return u8(a & a)
    return 7


@xdp
def rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_PASS
    out.byte = update(update(out.half))
    return XDP_PASS

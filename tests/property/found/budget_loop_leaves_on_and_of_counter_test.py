"""Budget under-estimate (program 11232 of seed 20261206, hook `rx`: the kernel processed
8,697, the checker estimated 8,404; reduced: 12,141 processed, 6,863 estimated): a loop that
leaves on `x != k and y != 224 and y < -2` with `x` a map field LLVM keeps in a register
across iterations. The test stays in the loop on three paths (one per comparison that
fails); on the first `x == k` makes `x` the constant k, which later iterations decide, so
the verifier keeps every iteration's states apart and their walks multiply (a constant
bound of 16: 6,809 processed for an estimate of 979; 24: past the limit). The estimate
counted one state carried on, as for a plain `if ...: break`; it now doubles per iteration
for such a test (two paths: one more state per iteration)."""
from etran.dsl import *


class Trace(Struct):
    sword: i32
    byte: u8


traces = ArrayMap(Trace, max_entries=1)


@xdp
def rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_DROP
    for k in range(min(out.byte % 114, 16)):
        if out.byte != k and out.sword != 224 and (out.sword < -2):
            break
    return XDP_TX

"""Kernel/interpreter mismatch: `a[i] op= <value with an effect>` with `i` out of range.

`v.last[v.i] *= atomic_add(v.last[1], 5)` with `v.i == 5` (the array has 4 elements): an
out-of-range write is dropped, but the value is still computed (Python evaluates the right
side whatever happens to the store; the interpreter does, and so does the kernel for a plain
`=`). For the augmented store the kernel skips the right side too, so its `atomic_add`
never happens: with `slots[0] = {i: 5, last: [0, 3, 0, 0]}` the kernel ends with
last[1] == 3, the interpreter with last[1] == 8."""
from etran.dsl import *


class V(Struct):
    i: i8
    last: Array[i64, 4]


slots = ArrayMap(V, max_entries=1)


@xdp
def rx(pkt: Packet) -> int:
    v = slots.get(0)
    if v is not None:
        v.last[v.i] *= atomic_add(v.last[1], 5)
    return XDP_PASS

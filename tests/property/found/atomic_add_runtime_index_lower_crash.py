"""Lowering crash (AssertionError in lower_expr.address): `atomic_add` on an array element
with a runtime index. The checker accepts it ("a field or array element"); the interpreter
would also assert on an out-of-range index (e_Atomic: `assert loc is not None`)."""
from etran.dsl import *


class S(Struct):
    arr: Array[u32, 4]


m = ArrayMap(S, max_entries=1)


@xdp
def h(pkt: Packet) -> int:
    v = m.get(0)
    if v is None:
        return XDP_PASS
    atomic_add(v.arr[pkt.len], 1)
    return XDP_PASS

"""Kernel/interpreter mismatch (and verifier rejections): an out-of-range array index that is a
*typed signed* constant, e.g. `i8(9)`, is neither refused by the checker (`bounds` only looks
at untyped constants) nor checked at run time: the read goes past the array.

Here `v.a[i8(9)]` reads byte 9 of the map value, which is inside `b`: with
`m[0] = {a: [1, 2, 3, 4], b: 0x0102030405060708}` the kernel stores 7 in `b`, the
interpreter 0 (an index outside the array reads 0). `u8(9)` is handled. On a packet view
the same read is rejected by the verifier (`eth.src[i8(127)]`: "invalid access to packet,
off=133"), and on a map value past its end too ("invalid access to map value")."""
from etran.dsl import *


class S(Struct):
    a: Array[u8, 4]
    b: u64


m = ArrayMap(S, max_entries=1)


@xdp
def rx(pkt: Packet) -> int:
    v = m.get(0)
    if v is None:
        return XDP_PASS
    v.b = v.a[i8(9)]
    return XDP_PASS

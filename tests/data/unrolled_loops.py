"""Counted loops the lowering unrolls (etran.lower.unroll), with its corners: indexes past
the array (read 0, writes ignored), a start and a step, a negative step, `continue` and
`break`, indexes and view offsets computed from the counter, and a loop that assigns its
counter (left a loop). tests/kernel/test_unrolled_loops.py runs it against the interpreter."""
from etran.dsl import *


class Words(Header):
    w: Array[u16, 8]


class Acc(Struct):
    v: Array[u32, 8]


stats = ArrayMap(Acc, max_entries=1)


@xdp
def corners(pkt: Packet) -> int:
    words = pkt.header(Words, 0)
    if words is None:
        return XDP_PASS
    a = stats.get(0)
    if a is None:
        return XDP_ABORTED
    s: u32 = 0
    for i in range(10):
        s += words.w[i]
        a.v[i] = s
    for i in range(6, 8):
        words.w[i + 1] = u16(s >> u32(i))
    last: u32 = 0
    for i in range(1, 12, 3):
        last = u32(i)
        if words.w[i - 1] & 1 != 0:
            continue
        a.v[i // 2] += u32(i)
        if words.w[i] == 0xFFFF:
            break
    a.v[1] = last
    for k in range(4):
        h = pkt.header(Words, 2 * k + 1)
        if h is None:
            break
        s ^= u32(h.w[7 - 2 * k])
    for j in range(3, -1, -1):
        a.v[j] -= u32(words.w[j * 3])
    for n in range(4):                   # assigns its counter: stays a loop
        s += words.w[n]
        n = n + 5
        s += words.w[n]
    return XDP_TX if s & 1 != 0 else XDP_PASS

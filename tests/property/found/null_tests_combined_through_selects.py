"""Verifier rejection of a checker-accepted program: "R1 pointer |= pointer prohibited".

Two null tests whose results choose values (`x = 1 if a is None else 2`, then `y = x if
b is None else 3`) become selects; LLVM folds the two selects into one on `a == null &&
b == null`, and instruction selection turns that into one test of `a | b`: bitwise
arithmetic on two pointers, which the verifier forbids. Anchoring the pointers is not
enough, as the fold happens after the anchors are gone: the test's 0/1 result passes an
inline-asm barrier, so each null test stays its own comparison."""
from etran.dsl import *


class Conn(Struct):
    last: u8


slots = ArrayMap(Conn, max_entries=2)


@xdp
def rx(pkt: Packet) -> int:
    a = slots.get(0)
    b = slots.get(1)
    x: u32 = 1 if a is None else 2
    y: u32 = x if b is None else 3
    return XDP_PASS if y == 1 else XDP_DROP

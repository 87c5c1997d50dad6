"""Verifier rejection of a checker-accepted program: "misaligned stack access off 0+0+-69 size 2".

A Header (packed, alignment 1, 17 bytes) built on the stack is placed at an odd stack
offset; its be16 array elements are then read with 2-byte loads at odd offsets, which the
verifier refuses for the stack (it requires aligned stack accesses whatever the
architecture). Headers on the stack need their natural alignment, or byte-wise access."""
from etran.dsl import *


class Conn(Struct):
    count: u64


class Tag(Header):
    count: Array[be16, 6]
    total: Array[u8, 5]


pending = Queue(Conn, max_entries=2)


def update(a: u8, tag: Tag) -> None:
    tag.count[0] &= tag.count[a]
    if not tag.total[1] >= tag.count[tag.total[1]] and i8(70) != i64(-128):
        item = pending.pop()


@xdp
def rx(pkt: Packet) -> int:
    update(127, Tag())
    return XDP_TX

from etran.dsl import *
# expect: unsupported-syntax at 18:17
# Summing the SACK blocks with a generator expression.


class Sack(Struct):
    blocks: Array[u32, 4]


sacks = ArrayMap(Sack, max_entries=1)


@xdp
def rx(pkt: Packet) -> int:
    s = sacks.get(0)
    if s is None:
        return XDP_PASS
    sacked = sum(s.blocks[i] for i in range(4))
    return XDP_PASS

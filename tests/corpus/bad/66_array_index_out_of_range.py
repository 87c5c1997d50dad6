from etran.dsl import *
# expect: bounds at 18:14
# The SACK table has 4 blocks (0..3); index 4 is past its end.


class Sack(Struct):
    blocks: Array[u32, 4]


sacks = ArrayMap(Sack, max_entries=1)


@xdp
def clear_last_block(pkt: Packet) -> int:
    s = sacks.get(0)
    if s is None:
        return XDP_PASS
    s.blocks[4] = 0
    return XDP_PASS

from etran.dsl import *
# expect: type at 18:13
# A checksum needs the range's length: the offset alone does not say where it ends.


class Out(Struct):
    sum: u32


out = ArrayMap(Out, max_entries=1)


@xdp
def sum_all(pkt: Packet) -> int:
    o = out.get(0)
    if o is None:
        return XDP_DROP
    o.sum = pkt.checksum(14)
    return XDP_PASS

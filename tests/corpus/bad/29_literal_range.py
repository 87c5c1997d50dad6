from etran.dsl import *
# expect: literal-range at 18:17
# 300 does not fit the u8 duplicate-ACK counter.


class Conn(Struct):
    dupacks: u8


conns = HashMap(u32, Conn, max_entries=1024)


@xdp
def reset_dupacks(pkt: Packet) -> int:
    c = conns.get(pkt.rx_queue)
    if c is None:
        return XDP_PASS
    c.dupacks = 300
    return XDP_PASS

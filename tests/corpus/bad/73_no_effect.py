from etran.dsl import *
# expect: no-effect at 18:5
# `==` where `=` was meant: the comparison does nothing.


class Conn(Struct):
    dupacks: u8


conns = HashMap(u32, Conn, max_entries=1024)


@xdp
def rx(pkt: Packet) -> int:
    c = conns.get(pkt.rx_queue)
    if c is None:
        return XDP_PASS
    c.dupacks == 0
    return XDP_PASS

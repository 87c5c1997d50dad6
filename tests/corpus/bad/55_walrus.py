from etran.dsl import *
# expect: unsupported-syntax at 15:9
# Assigning and testing the lookup in one expression with `:=`.


class Conn(Struct):
    acks: u32


conns = HashMap(u32, Conn, max_entries=1024)


@xdp
def rx(pkt: Packet) -> int:
    if (c := conns.get(pkt.rx_queue)) is not None:
        c.acks += 1
    return XDP_PASS

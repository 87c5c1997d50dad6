from etran.dsl import *
# expect: unsupported-syntax at 16:37
# A connection state kept as a string.


class Conn(Struct):
    state: u8


conns = HashMap(u32, Conn, max_entries=1024)


@xdp
def rx(pkt: Packet) -> int:
    c = conns.get(pkt.rx_queue)
    if c is not None and c.state == "established":
        return XDP_PASS
    return XDP_DROP

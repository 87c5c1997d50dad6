from etran.dsl import *
# expect: unsupported-syntax at 19:9
# Forgetting a closed connection with `del` on the map.


class Conn(Struct):
    closing: bool


conns = HashMap(u32, Conn, max_entries=1024)


@xdp
def rx(pkt: Packet) -> int:
    c = conns.get(pkt.rx_queue)
    if c is None:
        return XDP_PASS
    if c.closing:
        del conns[pkt.rx_queue]
    return XDP_PASS

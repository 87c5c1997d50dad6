from etran.dsl import *
# expect: unsupported-syntax at 18:25
# DCTCP's gain written as a float.


class Conn(Struct):
    alpha: u32


conns = HashMap(u32, Conn, max_entries=1024)


@xdp
def update_alpha(pkt: Packet) -> int:
    c = conns.get(pkt.rx_queue)
    if c is None:
        return XDP_PASS
    c.alpha = c.alpha * 0.9375
    return XDP_PASS

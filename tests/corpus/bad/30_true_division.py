from etran.dsl import *
# expect: type at 18:14
# Halving the window with `/`, which is true division.


class Conn(Struct):
    cwnd: u32


conns = HashMap(u32, Conn, max_entries=1024)


@xdp
def on_loss(pkt: Packet) -> int:
    c = conns.get(pkt.rx_queue)
    if c is None:
        return XDP_PASS
    c.cwnd = c.cwnd / 2
    return XDP_PASS

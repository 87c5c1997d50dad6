from etran.dsl import *
# expect: module-level at 12:1
# Initialising a map entry at import time: there is no module-level code.


class Conn(Struct):
    cwnd: u32


conns = HashMap(u32, Conn, max_entries=1024)

conns.set(0, Conn(cwnd=14480))


@xdp
def rx(pkt: Packet) -> int:
    c = conns.get(pkt.rx_queue)
    if c is None:
        return XDP_PASS
    c.cwnd += 1
    return XDP_PASS

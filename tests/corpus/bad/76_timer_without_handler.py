from etran.dsl import *
# expect: timer at 20:5
# Arming the retransmission timer, but no @timer(Conn.rto) handler exists.


class Conn(Struct):
    sent: u32
    rto: Timer


conns = HashMap(u32, Conn, max_entries=256)


@egress
def tx(pkt: Packet) -> int:
    c = conns.get(pkt.rx_queue)
    if c is None:
        return XDP_PASS
    c.sent += 1
    c.rto.start(4_000_000)
    return XDP_TX

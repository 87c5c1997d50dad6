from etran.dsl import *
# expect: hook-helper at 19:9
# A retransmit timer tries to redirect: a timer runs without a packet.


class Conn(Struct):
    queue: u32
    pending: bool
    rto: Timer


conns = HashMap(u32, Conn, max_entries=256)
sockets = XskMap(max_entries=64)


@timer(Conn.rto)
def rto_fired(key: u32, c: Conn) -> None:
    if c.pending:
        sockets.redirect(c.queue, XDP_PASS)


@egress
def on_send(pkt: Packet) -> int:
    c = conns.get(pkt.rx_queue)
    if c is None:
        return XDP_PASS
    c.pending = True
    c.rto.start(1_000_000)
    return XDP_TX

from etran.dsl import *
# expect: hook-helper at 17:15
# The timer keeps the verdict of a redirect: a timer runs without a packet.


class Conn(Struct):
    queue: u32
    rto: Timer


conns = HashMap(u32, Conn, max_entries=256)
sockets = XskMap(max_entries=64)


@timer(Conn.rto)
def rto_fired(key: u32, c: Conn) -> None:
    verdict = sockets.redirect(c.queue, XDP_PASS)
    if verdict == XDP_PASS:
        c.queue = 0


@xdp
def rx(pkt: Packet) -> int:
    return XDP_PASS

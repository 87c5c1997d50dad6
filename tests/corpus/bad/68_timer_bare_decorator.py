from etran.dsl import *
# expect: hook at 15:2
# `@timer` without the Timer field it handles.


class Conn(Struct):
    acked: u32
    sent: u32
    rto: Timer


conns = HashMap(u32, Conn, max_entries=256)


@timer
def rto_fired(key: u32, c: Conn) -> None:
    c.sent = c.acked


@xdp
def rx(pkt: Packet) -> int:
    return XDP_PASS

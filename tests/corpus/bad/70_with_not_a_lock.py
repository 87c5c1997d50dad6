from etran.dsl import *
# expect: lock at 19:10
# `with` on the map value itself instead of its SpinLock field.


class Conn(Struct):
    lock: SpinLock
    acks: u32


conns = HashMap(u32, Conn, max_entries=1024)


@xdp
def rx(pkt: Packet) -> int:
    c = conns.get(pkt.rx_queue)
    if c is None:
        return XDP_PASS
    with c:
        c.acks += 1
    return XDP_PASS

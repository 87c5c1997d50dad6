from etran.dsl import *
# expect: map-decl at 11:25
# The kernel refuses spin locks in LRU hash maps.


class Conn(Struct):
    lock: SpinLock
    cwnd: u32


conns = LruHashMap(u32, Conn, max_entries=4096)


@xdp
def rx(pkt: Packet) -> int:
    c = conns.get(pkt.rx_queue)
    if c is None:
        return XDP_PASS
    with c.lock:
        c.cwnd += 1
    return XDP_PASS

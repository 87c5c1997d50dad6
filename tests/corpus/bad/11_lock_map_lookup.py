from etran.dsl import *
# expect: lock-helper at 26:15
# Looking up another map while holding the connection lock.


class Conn(Struct):
    lock: SpinLock
    cwnd: u32


class Limit(Struct):
    max_cwnd: u32


conns = HashMap(u32, Conn, max_entries=1024)
limits = ArrayMap(Limit, max_entries=1)


@xdp
def grow_window(pkt: Packet) -> int:
    c = conns.get(pkt.rx_queue)
    if c is None:
        return XDP_PASS
    with c.lock:
        c.cwnd += 1448
        lim = limits.get(0)
        if lim is not None and c.cwnd > lim.max_cwnd:
            c.cwnd = lim.max_cwnd
    return XDP_PASS

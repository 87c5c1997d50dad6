from etran.dsl import *
# expect: lock-helper at 22:25
# Reading the clock while the connection's spin lock is held.


class Conn(Struct):
    lock: SpinLock
    last_ack_ns: u64
    acks: u32


conns = HashMap(u32, Conn, max_entries=1024)


@xdp
def on_ack(pkt: Packet) -> int:
    c = conns.get(pkt.rx_queue)
    if c is None:
        return XDP_PASS
    with c.lock:
        c.acks += 1
        c.last_ack_ns = now_ns()
    return XDP_PASS

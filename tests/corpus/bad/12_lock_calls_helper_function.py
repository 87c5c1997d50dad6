from etran.dsl import *
# expect: lock-helper at 26:9
# `stamp` looks harmless, but it reads the clock: calling it under the lock is a helper call.


class Conn(Struct):
    lock: SpinLock
    acks: u32
    last_ack_ns: u64


conns = HashMap(u32, Conn, max_entries=1024)


def stamp(c: Conn) -> None:
    c.last_ack_ns = now_ns()


@xdp
def on_ack(pkt: Packet) -> int:
    c = conns.get(pkt.rx_queue)
    if c is None:
        return XDP_PASS
    with c.lock:
        c.acks += 1
        stamp(c)
    return XDP_PASS

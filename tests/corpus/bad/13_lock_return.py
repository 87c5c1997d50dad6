from etran.dsl import *
# expect: lock-exit at 22:13
# Returning early from inside the lock would leave it held.


class Conn(Struct):
    lock: SpinLock
    snd_una: u32
    dupacks: u8


conns = HashMap(u32, Conn, max_entries=1024)


@xdp
def count_dupacks(pkt: Packet) -> int:
    c = conns.get(pkt.rx_queue)
    if c is None:
        return XDP_PASS
    with c.lock:
        if c.dupacks >= 3:
            return XDP_DROP
        c.dupacks += 1
    return XDP_PASS

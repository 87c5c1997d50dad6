from etran.dsl import *
# expect: lock-exit at 23:17
# `break` out of the loop from inside the `with` block skips the unlock.


class Conn(Struct):
    lock: SpinLock
    credits: u32
    granted: u32


conns = ArrayMap(Conn, max_entries=8)


@gen
def grant_credits(pkt: Packet) -> int:
    c = conns.get(0)
    if c is None:
        return XDP_DROP
    for i in range(16):
        with c.lock:
            if c.credits == 0:
                break
            c.credits -= 1
            c.granted += 1
    return XDP_DROP

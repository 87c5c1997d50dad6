from etran.dsl import *
# expect: lock-nested at 27:9
# `credit` takes the peer's lock; it is called while our own lock is held.


class Conn(Struct):
    lock: SpinLock
    credits: u32


conns = HashMap(u32, Conn, max_entries=1024)


def credit(peer: Conn) -> None:
    with peer.lock:
        peer.credits += 1


@xdp
def transfer(pkt: Packet) -> int:
    mine = conns.get(0)
    peer = conns.get(1)
    if mine is None or peer is None:
        return XDP_PASS
    with mine.lock:
        mine.credits -= 1
        credit(peer)
    return XDP_PASS

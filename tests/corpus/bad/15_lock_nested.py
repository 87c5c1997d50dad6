from etran.dsl import *
# expect: lock-nested at 23:9
# Taking the peer connection's lock while already holding our own.


class Conn(Struct):
    lock: SpinLock
    inflight: u32


conns = HashMap(u32, Conn, max_entries=1024)


@xdp
def move_credit(pkt: Packet) -> int:
    mine = conns.get(0)
    if mine is None:
        return XDP_PASS
    peer = conns.get(1)
    if peer is None:
        return XDP_PASS
    with mine.lock:
        with peer.lock:
            peer.inflight += 1
        mine.inflight -= 1
    return XDP_PASS

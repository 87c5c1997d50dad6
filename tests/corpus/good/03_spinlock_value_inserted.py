from etran.dsl import *
# expect: ok
# A fresh value with a SpinLock, written straight into the map: the kernel accepts it.


class Conn(Struct):
    lock: SpinLock
    cwnd: u32


conns = HashMap(u32, Conn, max_entries=1024)


@xdp
def open_conn(pkt: Packet) -> int:
    if conns.get(pkt.rx_queue) is not None:
        return XDP_PASS
    conns.set(pkt.rx_queue, Conn(cwnd=14480))
    return XDP_PASS

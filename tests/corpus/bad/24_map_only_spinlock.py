from etran.dsl import *
# expect: map-only at 18:29
# A struct with a SpinLock is built on the stack; it can only live in a map.


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

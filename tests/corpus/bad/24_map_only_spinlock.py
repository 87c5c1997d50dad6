from etran.dsl import *
# expect: map-only at 16:13
# A struct with a SpinLock is built on the stack as a local: it can only live in a map.


class Conn(Struct):
    lock: SpinLock
    cwnd: u32


conns = HashMap(u32, Conn, max_entries=1024)


@xdp
def open_conn(pkt: Packet) -> int:
    fresh = Conn(cwnd=14480)
    conns.set(pkt.rx_queue, fresh)
    return XDP_PASS

from etran.dsl import *
# expect: unsupported-syntax at 6:2
# A dataclass decorator on a struct.


@dataclass
class Conn(Struct):
    cwnd: u32


conns = HashMap(u32, Conn, max_entries=1024)


@xdp
def rx(pkt: Packet) -> int:
    c = conns.get(pkt.rx_queue)
    if c is None:
        return XDP_PASS
    c.cwnd += 1
    return XDP_PASS

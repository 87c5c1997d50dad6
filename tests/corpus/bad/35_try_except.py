from etran.dsl import *
# expect: unsupported-syntax at 15:5
# Guarding a lookup with try/except: there are no exceptions in the kernel.


class Conn(Struct):
    cwnd: u32


conns = HashMap(u32, Conn, max_entries=1024)


@xdp
def rx(pkt: Packet) -> int:
    try:
        c = conns.get(pkt.rx_queue)
        if c is not None:
            c.cwnd += 1
    except KeyError:
        return XDP_DROP
    return XDP_PASS

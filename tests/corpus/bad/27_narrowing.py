from etran.dsl import *
# expect: narrowing at 20:17
# The advertised window is a u16 field, the computed window a u32: narrowing needs a cast.


class Conn(Struct):
    rcv_wnd: u16
    buffered: u32


conns = HashMap(u32, Conn, max_entries=1024)


@xdp
def update_window(pkt: Packet) -> int:
    c = conns.get(pkt.rx_queue)
    if c is None:
        return XDP_PASS
    free = 65535 - c.buffered
    c.rcv_wnd = free
    return XDP_PASS

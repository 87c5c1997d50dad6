from etran.dsl import *
# expect: type at 19:26
# Exponential backoff written with `**` on a runtime value.


class Conn(Struct):
    rto_ns: u64
    backoffs: u8


conns = HashMap(u32, Conn, max_entries=1024)


@egress
def tx(pkt: Packet) -> int:
    c = conns.get(pkt.rx_queue)
    if c is None:
        return XDP_PASS
    c.rto_ns = 200_000 * 2 ** c.backoffs
    return XDP_TX

from etran.dsl import *
# expect: unsupported-syntax at 17:12
# Returning two values as a tuple.


class Conn(Struct):
    cwnd: u32
    ssthresh: u32


conns = HashMap(u32, Conn, max_entries=1024)


def halve(cwnd: u32) -> u32:
    new_cwnd = max(cwnd // 2, 1448)
    ssthresh = new_cwnd
    return new_cwnd, ssthresh


@xdp
def on_loss(pkt: Packet) -> int:
    c = conns.get(pkt.rx_queue)
    if c is None:
        return XDP_PASS
    c.cwnd = halve(c.cwnd)
    return XDP_PASS

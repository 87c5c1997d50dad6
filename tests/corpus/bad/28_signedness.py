from etran.dsl import *
# expect: signedness at 20:8
# The RTT error is signed, the threshold unsigned: comparing them mixes signedness.


class Conn(Struct):
    srtt: u32
    threshold: u32


conns = HashMap(u32, Conn, max_entries=1024)


@xdp
def rtt_probe(pkt: Packet) -> int:
    c = conns.get(pkt.rx_queue)
    if c is None:
        return XDP_PASS
    err = i32(pkt.len) - i32(c.srtt)
    if err > c.threshold:
        return XDP_DROP
    return XDP_PASS

from etran.dsl import *
# expect: loop-bound at 16:17
# Python-style iteration over a map: a loop runs over `range(...)` only.


class Conn(Struct):
    cwnd: u32


conns = HashMap(u32, Conn, max_entries=256)


@xdp
def reset_windows(pkt: Packet) -> int:
    total: u32 = 0
    for conn in conns:
        total += 1
    return XDP_PASS if total != 0 else XDP_DROP

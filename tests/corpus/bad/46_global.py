from etran.dsl import *
# expect: unsupported-syntax at 10:5
# A packet counter kept in a module global.

packets_seen = 0


@xdp
def rx(pkt: Packet) -> int:
    global packets_seen
    packets_seen += 1
    return XDP_PASS

from etran.dsl import *
# expect: unsupported-syntax at 8:15
# A list of well-known ports.


@xdp
def rx(pkt: Packet) -> int:
    allowed = [80, 443, 8080]
    return XDP_PASS

from etran.dsl import *
# expect: unsupported-syntax at 8:15
# A dict from queue to connection id.


@xdp
def rx(pkt: Packet) -> int:
    conn_of = {0: 17, 1: 42}
    return XDP_PASS

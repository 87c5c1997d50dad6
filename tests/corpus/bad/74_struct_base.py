from etran.dsl import *
# expect: struct at 6:7
# A struct declared without deriving from Struct.


class Conn:
    cwnd: u32


@xdp
def rx(pkt: Packet) -> int:
    return XDP_PASS

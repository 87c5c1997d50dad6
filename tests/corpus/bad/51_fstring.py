from etran.dsl import *
# expect: unsupported-syntax at 8:12
# An f-string trace message.


@xdp
def rx(pkt: Packet) -> int:
    note = f"frame of {pkt.len} bytes"
    return XDP_PASS

from etran.dsl import Packet, xdp, XDP_PASS, XDP_CONSUME
# expect: import at 1:46
# `XDP_CONSUME` is not a name the language provides.


@xdp
def rx(pkt: Packet) -> int:
    return XDP_PASS

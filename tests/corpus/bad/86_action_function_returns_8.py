from etran.dsl import *
# expect: hook-return at 12:16
# A function declared `-> int` returns an XDP action, as a hook does: 8 is not one.

LIMIT = 1000


def classify(length: u32) -> int:
    if length < 64:
        return XDP_DROP
    if length > LIMIT:
        return 8
    return XDP_PASS


@xdp
def sizes(pkt: Packet) -> int:
    return classify(pkt.len)

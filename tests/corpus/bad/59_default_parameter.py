from etran.dsl import *
# expect: unsupported-syntax at 6:46
# A default MSS for the window helper.


def initial_window(segments: u32, mss: u32 = 1448) -> u32:
    return segments * mss


@xdp
def rx(pkt: Packet) -> int:
    if pkt.len > initial_window(10):
        return XDP_DROP
    return XDP_PASS

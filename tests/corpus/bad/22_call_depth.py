from etran.dsl import *
# expect: call-depth at 11:12
# A chain of small helpers nests 8 calls below the hook: 9 frames, the kernel allows 8.


def frame_bytes(x: u32) -> u32:
    return min(x, 9000) + 14


def padded(x: u32) -> u32:
    return frame_bytes(x) + 4


def segment_cost(x: u32) -> u32:
    return padded(x) + 1


def burst_cost(x: u32) -> u32:
    return segment_cost(x) * 2


def window_cost(x: u32) -> u32:
    return burst_cost(x) + 8


def pacing_cost(x: u32) -> u32:
    return window_cost(x) + 16


def budget_left(x: u32) -> u32:
    return pacing_cost(x) + 32


def admit(x: u32) -> bool:
    return budget_left(x) < 65536


@xdp
def rx(pkt: Packet) -> int:
    if admit(pkt.len):
        return XDP_PASS
    return XDP_DROP

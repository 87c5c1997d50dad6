from etran.dsl import *
# expect: unsupported-syntax at 8:9
# A generator that yields sequence numbers.


def next_seqs(start: u32) -> u32:
    for i in range(4):
        yield start + i * 1448


@xdp
def rx(pkt: Packet) -> int:
    return XDP_PASS

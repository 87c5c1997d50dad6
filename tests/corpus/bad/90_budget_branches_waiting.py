from etran.dsl import *
# expect: budget at 15:5
# A sample of every packet to a ring buffer, up to 9,000 records, stopping when it is full:
# each turn's full-buffer exit waits for the verifier while it walks the next turn.


class Sample(Struct):
    value: u32


samples = RingBuf(Sample, max_entries=1 << 16)


@xdp
def sample(pkt: Packet) -> int:
    for i in range(9000):
        if not samples.output(Sample(value=i)):
            break
    return XDP_PASS

from etran.dsl import *
# expect: ok
# A 320-byte RTT sample built once on the stack: 328 bytes, under the 512-byte limit
# (the kernel reports "stack depth 328").


class Sample(Struct):
    rtt: Array[u32, 80]


samples = ArrayMap(Sample, max_entries=1)


@xdp
def record(pkt: Packet) -> int:
    s = Sample()
    s.rtt[0] = pkt.len
    samples.set(0, s)
    return XDP_PASS

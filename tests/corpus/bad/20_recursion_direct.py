from etran.dsl import *
# expect: recursion at 11:12
# Counting retransmissions recursively: BPF has no recursion.


def backoff(rto: u32, times: u32) -> u32:
    if times == 0:
        return rto
    if rto >= 1_000_000_000:
        return rto
    return backoff(rto * 2, times - 1)


@xdp
def rx(pkt: Packet) -> int:
    if backoff(200_000, 3) > 1_000_000:
        return XDP_DROP
    return XDP_PASS

from etran.dsl import *
# expect: ok
# A 64 x 32 scan of the RTT history: the kernel verifier processes about 33,000
# instructions for it, well under its 1,000,000 limit.


class History(Struct):
    rtt: Array[u32, 64]


history = ArrayMap(History, max_entries=1)


@xdp
def rtt_mix(pkt: Packet) -> int:
    h = history.get(0)
    if h is None:
        return XDP_PASS
    total: u32 = 0
    for i in range(64):
        for j in range(32):
            total += h.rtt[i] ^ h.rtt[j]
    return XDP_DROP if total == 0 else XDP_PASS

from etran.dsl import *
# expect: budget at 14:5
# A 64 x 64 x 64 scan of the RTT history: far more verifier work than the kernel allows.


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
        for j in range(64):
            for k in range(64):
                total += h.rtt[i] ^ h.rtt[j] ^ h.rtt[k]
    return XDP_DROP if total == 0 else XDP_PASS

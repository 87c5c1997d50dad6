"""Per-flow token-bucket rate limiter, refilled by a kernel timer.

Each flow (by source address and destination port) has a bucket of byte
tokens. Ingress (`police`) charges every UDP frame to its flow's bucket and
drops it when the bucket is empty. A periodic timer per flow (`refill`) adds
`rate_bytes` tokens every REFILL_NS, up to `burst`, and re-arms itself; the
first frame of a flow arms it.
"""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Udp, ETH_P_IP, IPPROTO_UDP

REFILL_NS = 1_000_000         # 1 ms


class FlowKey(Struct):
    src: be32
    dport: be16


class Bucket(Struct):
    tokens: u32
    burst: u32
    rate_bytes: u32          # tokens added per refill
    passed: u64
    dropped: u64
    armed: bool
    refill_timer: Timer


buckets = HashMap(FlowKey, Bucket, max_entries=1024)


@xdp
def police(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None or ip.protocol != IPPROTO_UDP:
        return XDP_PASS
    udp = pkt.header(Udp, Eth.size + ip.header_len())
    if udp is None:
        return XDP_PASS
    b = buckets.get(FlowKey(src=ip.src, dport=udp.dst_port))
    if b is None:
        return XDP_PASS                       # unlimited flow
    if not b.armed:
        b.armed = True
        b.refill_timer.start(REFILL_NS)
    cost = pkt.len
    if b.tokens < cost:
        b.dropped += 1
        return XDP_DROP
    b.tokens -= cost
    b.passed += 1
    return XDP_PASS


@timer(Bucket.refill_timer)
def refill(key: FlowKey, b: Bucket) -> None:
    b.tokens = min(b.tokens + b.rate_bytes, b.burst)
    b.refill_timer.start(REFILL_NS)

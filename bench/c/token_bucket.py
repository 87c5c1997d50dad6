"""A token bucket per source address, in an LRU hash so that the busiest sources keep
their buckets when the table fills up.

Tokens are bytes. Each frame first refills its source's bucket for the time since the
last frame (at `rate` bytes per second, at most `burst`), then pays its length or is
dropped. The elapsed time is capped at one second so that elapsed * rate cannot
overflow. A new source gets a full bucket with the default rate. The twin of
token_bucket.c, statement for statement.
"""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, ETH_P_IP

NSEC_PER_SEC = 1_000_000_000
DEFAULT_RATE = 12_500_000    # bytes per second: 100 Mbit/s
DEFAULT_BURST = 65536


class Source(Struct):
    addr: be32


class Bucket(Struct):
    tokens: u64
    last_ns: u64
    rate: u64                # bytes per second
    burst: u64
    passed: u64
    dropped: u64


buckets = LruHashMap(Source, Bucket, max_entries=65536)


@xdp
def police(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None:
        return XDP_PASS
    src = Source(addr=ip.src)
    size = u64(pkt.len)
    now = now_ns()
    b = buckets.get(src)
    if b is None:
        buckets.set(src, Bucket(tokens=DEFAULT_BURST - size, last_ns=now, rate=DEFAULT_RATE,
                                burst=DEFAULT_BURST, passed=1))
        return XDP_PASS
    elapsed = now - b.last_ns
    if elapsed > NSEC_PER_SEC:
        elapsed = NSEC_PER_SEC
    b.last_ns = now
    tokens = b.tokens + elapsed * b.rate // NSEC_PER_SEC
    if tokens > b.burst:
        tokens = b.burst
    if tokens < size:
        b.tokens = tokens
        b.dropped += 1
        return XDP_DROP
    b.tokens = tokens - size
    b.passed += 1
    return XDP_PASS

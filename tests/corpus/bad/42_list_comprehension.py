from etran.dsl import *
# expect: unsupported-syntax at 8:16
# Precomputing a backoff schedule with a list comprehension.


@xdp
def rx(pkt: Packet) -> int:
    backoffs = [1 << i for i in range(8)]
    return XDP_PASS

"""A program whose result depends on a signed comparison (for the mismatch test)."""
from etran.dsl import *


class Cfg(Struct):
    delta: i32


cfg = ArrayMap(Cfg, max_entries=1)


@xdp
def classify(pkt: Packet) -> int:
    c = cfg.get(0)
    if c is None:
        return XDP_ABORTED
    if c.delta < 0:
        return XDP_DROP
    return XDP_PASS

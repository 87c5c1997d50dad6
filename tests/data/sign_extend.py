"""A program whose result depends on sign extension (for the seeded-defect test)."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth


class Word(Header):
    value: u8


@xdp
def classify(pkt: Packet) -> int:
    w = pkt.header(Word, 20)
    if w is None:
        return XDP_ABORTED
    wide = i32(i8(w.value)) * 3
    if wide < -100:
        return XDP_DROP
    if wide > 300:
        return XDP_TX
    return XDP_PASS

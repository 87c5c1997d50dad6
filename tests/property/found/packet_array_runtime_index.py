"""Verifier rejection of checker-accepted programs: a runtime index into an array field of a
packet view.

`rx`: "invalid access to packet, off=6 size=1, R2(id=1,off=6,r=0)": the lowering checks the
index against the array length, adds it to the packet pointer and reads; adding a variable
to a packet pointer gives a pointer with no verified range (r=0), so the read needs a new
comparison with data_end. `by_len`: with `pkt.len` as the index the verifier already refuses
the addition ("math between pkt pointer and register with unbounded min value")."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth


@xdp
def rx(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None:
        return XDP_PASS
    if eth.src[eth.dst[1]] > 5:
        return XDP_DROP
    return XDP_PASS


@xdp
def by_len(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None:
        return XDP_PASS
    if eth.src[pkt.len] > 5:
        return XDP_DROP
    return XDP_PASS

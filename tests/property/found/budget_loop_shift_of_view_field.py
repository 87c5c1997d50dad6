"""Budget under-estimate: the verifier processes 1,501 instructions, the checker estimates 397.

A 16-iteration loop shifting a packet field by shifts of packet fields
(`ip.dst >>= ip.tos >> ip.dst`): variable shifts (a range check on the count) on a value the
loop keeps changing; the verifier walks each iteration on more paths than the estimate."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4


@xdp
def rx(pkt: Packet) -> int:
    ip = pkt.header(IPv4, Eth.size)
    if ip is None:
        return XDP_TX
    for i in range(16):
        ip.dst >>= ip.tos >> ip.dst
    return XDP_DROP

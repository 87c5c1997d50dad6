"""Verifier rejection of a checker-accepted program: "invalid access to packet, off=0 size=1,
R3(id=4,off=0,r=0) (R3 offset is outside of the packet)".

Runtime indexes into arrays of two views, nested (an index read from a packet array indexes
another packet array), after storing into the first view. One of the element accesses is not
followed by the data_end comparison the verifier needs for a pointer with a variable offset.
(Reduced by line deletion from a generated program; simpler nestings load.)"""
from etran.dsl import *
from etran.bpf_templates.headers import Eth


class Shim(Header):
    total: Array[u8, 3]
    last: be32


@xdp
def rx(pkt: Packet) -> int:
    x = u8(pkt.ifindex << pkt.rx_queue)
    eth2 = pkt.header(Eth, 0)
    if eth2 is not None and eth2.src[1] == 0:
        eth2.proto = u8(eth2.proto % 7)
        shim2 = pkt.header(Shim, (eth2.proto | x) & 63)
        if shim2:
            shim2.total[shim2.last ^ eth2.dst[eth2.proto - shim2.last]] = \
                shim2.total[eth2.dst[eth2.src[eth2.dst[3] // 0] * x]] >> (shim2.total[0] // eth2.dst[4])
    return XDP_TX

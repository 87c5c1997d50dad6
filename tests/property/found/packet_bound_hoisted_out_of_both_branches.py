"""Verifier rejection of a checker-accepted program: "R3 invalid mem access 'scalar'".

Both sides of `if tag is not None` start by reading the packet's start from the context
(`eth` on one side, `tcp2` on the other). LLVM hoisted the two equal volatile loads above
the branch; the `else` side, also reached when the view's offset check fails, then took the
u32 through a phi and widened it with a 32-bit move, which turns a packet pointer into a
number for the verifier. Each read of the packet's bounds now goes through a context
pointer of its own (an anchor), so no two are equal. Found by the campaign of seed
20261208 (program 16561)."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp


class Tag(Header):
    count: u8
    last: Array[be16, 7]


@xdp
def rx(pkt: Packet) -> int:
    tcp = pkt.header(Tcp, Eth.size + IPv4.size)
    if tcp is None:
        return XDP_PASS
    tag = pkt.header(Tag, tcp.doff_res & 63)
    if tag is not None:
        eth = pkt.header(Eth, 0)
        return XDP_DROP
    else:
        tcp2 = pkt.header(Tcp, Eth.size + IPv4.size)
        if tcp2 is not None:
            tcp.ack_seq = tcp2.seq + 1
            return XDP_TX
    return XDP_PASS

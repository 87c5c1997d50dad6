"""Budget under-estimate: the checker's 1,517 for the kernel's 1,972.

A divisor is tested against zero, and where a path knows its value the verifier decides
the test and makes the value precise, back through `csum_fold` into the called
`ipv4_checksum`'s loop, whose sum of the header's words it then keeps apart per
iteration (423 processed without the division). The source model treated only
`pkt.checksum` divisors so; any divisor now counts as a branch test. Found by the
campaign of seed 20261208 (program 19863, 1.14x)."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, ipv4_checksum


class Conn(Struct):
    count: u32
    due: u32


conns = ArrayMap(Conn, max_entries=4)


@xdp
def rx(pkt: Packet) -> int:
    c = conns.get(2)
    if c is None:
        return XDP_PASS
    c.count += max(c.due, 244) % ipv4_checksum(pkt, Eth.size)
    return XDP_PASS

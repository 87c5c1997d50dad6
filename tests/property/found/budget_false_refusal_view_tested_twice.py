"""A false `budget` refusal (precision, not soundness): a view taken and tested twice in each
iteration of a loop of 16 (`if shim:` then `if not shim: break`). Each test doubled the
paths, so the estimate grew as 2^16 (40,099,910); the verifier knows the answer of the
second test on each path and processes 498. Testing a reference again now partitions the
paths instead of doubling them."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Udp


class Shim(Header):
    last: be16


@xdp
def classify_rx(pkt: Packet) -> int:
    for j in range(16):
        acc = -pkt.len
        shim = pkt.header(Shim, Eth.size + IPv4.size + Udp.size)
        if shim:
            acc &= (u16(31) & shim.last) << 1
        if not shim:
            break
    return XDP_TX

"""Budget under-estimate (1.43x) under a loop model that was tried and reverted (branch
states taken as pruned at the next iteration unless a select chose a value): a view
taken and tested in each of 16 iterations leaves states the verifier keeps apart."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4
LIMIT: u16 = 794
@xdp
def rx(pkt: Packet) -> int:
    for i in range(min(u32(LIMIT), 16)):
        ip = pkt.header(IPv4, Eth.size)
        if ip is None:
            continue
    return XDP_ABORTED


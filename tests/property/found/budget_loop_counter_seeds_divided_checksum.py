"""Budget under-estimate: the verifier processes 143,385 instructions, the checker estimated
30,853 (4.6x under; 274,041 against 139,621 in the generated program, seed 20261207 #3452).

`size = k` in a loop with a runtime stop leaves the loop with one constant per iteration
count, and `size` seeds a checksum whose value divides: the zero test makes the sum precise,
the kernel follows that back through the folding into the seed, so the 17 exits stay apart
and each walks the checksum's 64-piece loop. The model kept one state after the loop."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4


class Trace(Struct):
    swide: i64


traces = ArrayMap(Trace, max_entries=1)


@xdp
def rx(pkt: Packet) -> int:
    size: u32 = pkt.ifindex
    for k in range(min(u8(pkt.len), 16)):
        size = k
    ip = pkt.header(IPv4, Eth.size)
    if ip is None:
        return XDP_DROP
    size //= pkt.checksum(ip.dst, 2401, size)
    trace = traces.get(0)
    if trace is None:
        return XDP_DROP
    trace.swide ^= i64(size)
    return XDP_PASS

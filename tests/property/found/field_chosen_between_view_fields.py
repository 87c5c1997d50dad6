"""Checker accepted, kernel refused (found by a 4,000-program campaign, seed 8101): a field
chosen between two fields of one packet view, `ip.tos if c else ip.ver_ihl` or the same
with an `if` statement. LLVM merged the two checked uses of `ip` before the branch, then
the two loads into one at `ip + (c ? 1 : 0)` with `c` from a signed comparison it turned
into a shift: the verifier saw a packet pointer moved by a variable amount, forgot the
view's checked range and refused `invalid access to packet`. Each checked use is now
anchored on its own (etran.lower.function.anchor)."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4


class Flow(Struct):
    count: u8
    total: i64


slots = ArrayMap(Flow, max_entries=6)


@xdp
def rx(pkt: Packet) -> int:
    ip = pkt.header(IPv4, Eth.size)
    f = slots.get(0)
    if ip is None or f is None:
        return XDP_PASS
    x: u8 = 0
    if f.total >= i8(0x8000):
        x = ip.tos
    else:
        x = ip.ver_ihl
    f.count = x
    return XDP_DROP


@xdp
def rx2(pkt: Packet) -> int:
    ip = pkt.header(IPv4, Eth.size)
    f = slots.get(0)
    if ip is None or f is None:
        return XDP_PASS
    f.count = ip.tos if f.total >= i8(0x8000) else ip.ver_ihl
    return XDP_DROP

"""Checker crash (AssertionError in check_expr.coerce): a conditional expression whose two
branches are both integer literals, assigned to a typed variable. Expected: accepted, x is u8."""
from etran.dsl import *


@xdp
def h(pkt: Packet) -> int:
    x: u8 = 1 if pkt.len > 5 else 2
    return XDP_PASS if x == 1 else XDP_DROP

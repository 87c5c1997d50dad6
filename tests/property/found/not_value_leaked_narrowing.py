"""Verifier rejection of a checker-accepted program: "R? invalid mem access 'map_value_or_null'".

`not (flow is not None and ...)` used as a value (assigned, not branched on) left the
facts of one outcome behind: after it the checker took `flow` as tested, and the
program read through a reference that may be None. A `not` value now joins the facts of
both outcomes, so the read below is refused until `flow` is tested."""
from etran.dsl import *


class Flow(Struct):
    count: u32


flows = HashMap(u32, Flow, max_entries=8)


@xdp
def rx(pkt: Packet) -> int:
    flow = flows.get(pkt.len)
    quiet = not (flow is not None and flow.count > 3)
    flow.count += 1
    return XDP_PASS if quiet else XDP_DROP

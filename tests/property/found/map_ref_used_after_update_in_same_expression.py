"""Kernel/interpreter mismatch (found by the 20,000-program campaign): a map reference used
after a call in the same expression updated the map.

`atomic_add(flow.hits[0], flow.hits[reset(1)])`: Python, the interpreter and the
kernel all call `reset` before reading `flow.hits[...]` and before adding into
`flow.hits[0]`. `reset` replaces the entry `flow` points to; in the program the campaign found, the
kernel recycled the old element for the next insert, so the add landed in another
key's entry, while the interpreter's detached copy took it. The checker checked `flow` only where the name
appears; it now checks it again after the index and after the amount, and refuses both
uses as `map-ref-after-update`."""
from etran.dsl import *


class Flow(Struct):
    hits: Array[u32, 4]


flows = HashMap(u32, Flow, max_entries=4)


def reset(key: u32) -> u32:
    flows.set(key, Flow())
    flows.set(key + 2, Flow())
    return 1


@xdp
def rx(pkt: Packet) -> int:
    flow = flows.get(1)
    if flow is None:
        return XDP_PASS
    atomic_add(flow.hits[0], flow.hits[reset(1)])
    return XDP_PASS

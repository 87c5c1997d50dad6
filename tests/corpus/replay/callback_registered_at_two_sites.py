"""A generated program (seed 778, number 1912, reduced) on which the replay counted 9,008 of
the kernel's 9,064 instructions for `classify_rx` (the whole program: 8,348 of 9,121). The
hook starts the timer twice, so `bpf_timer_set_callback` registers the callback at two
places, and the kernel verifies the callback from each. Its frame's callsite is
BPF_MAIN_FUNC wherever it was registered, so the kernel prunes the second start of the
callback against the first; the replay kept the registering instruction in the state and
compared them as different. The count then differs further on: where the kernel prunes
early, it does not add the checkpoints the replay added, and it explores more elsewhere."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4



class Deadline(Struct):
    count: i32
    rto: Timer


class Trace(Struct):
    wide: u64
    word: u32
    shalf: i16
    sbyte: i8


deadlines = ArrayMap(Deadline, max_entries=3)
traces = ArrayMap(Trace, max_entries=1)


@timer(Deadline.rto)
def on_deadline(key: u32, value: Deadline) -> None:
    value.count += 1


@xdp
def classify_rx(pkt: Packet) -> int:
    out = traces.get(0)
    if out is None:
        return XDP_DROP
    deadline = deadlines.get(2)
    if deadline is None:
        return XDP_PASS
    out.word ^= pkt.checksum(Eth.size, IPv4.size, pkt.rx_queue)
    deadline.rto.start(out.wide)
    deadline.rto.start(out.wide)
    deadline3 = deadlines.get(1)
    out.shalf ^= out.sbyte
    return XDP_PASS

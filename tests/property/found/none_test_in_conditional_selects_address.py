"""Verifier rejection of a checker-accepted program: "R1 invalid mem access 'scalar'".

`tcp.flags if tcp is not None else tcp.flags` (with `tcp` already checked): LLVM turns the
two loads into one load from `tcp is None ? 13 : tcp + 13`, i.e. from address 13 on a path
the verifier cannot rule out. A None test of a view inside an expression must not let the
view's address be selected (keep the pointer opaque, or fold the test to True once narrowed)."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp


@xdp
def rx(pkt: Packet) -> int:
    tcp = pkt.header(Tcp, Eth.size + IPv4.size)
    if tcp is not None and tcp.doff_res != 133:
        tcp.urg_ptr &= u16(tcp.flags if tcp is not None else tcp.flags)
    return XDP_TX

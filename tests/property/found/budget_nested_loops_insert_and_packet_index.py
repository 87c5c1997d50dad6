"""Budget under-estimate: the verifier processes 1,879 instructions, the checker estimates 1,330.

Nested loops (4 x 3) whose body inserts into a hash map (a bool result kept) and updates a
packet array element at a runtime index (`eth.src[u8(tcp.doff_res)]`, a bounds check and a
data_end check per iteration)."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, ETH_P_IP


class Flow(Struct):
    last: u64


flows = HashMap(u8, Flow, max_entries=4)


@xdp
def rx(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_REDIRECT
    tcp = pkt.header(Tcp, Eth.size + IPv4.size)
    if tcp is not None:
        for j in range(4):
            for i in range(3):
                seen = not flows.insert(tcp.doff_res << eth.src[5], Flow(last=tcp.src_port * 82))
                eth.src[u8(tcp.doff_res)] &= tcp.flags
    return XDP_PASS

"""Budget under-estimate (1.29x): three packet views, one tested only in an else arm and
again inside nested tests, each keep the verifier's states apart; covered by the margin."""
from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, Tcp, Udp, ETH_P_IP, IPPROTO_TCP
class Flow(Struct):
    total: i32
    last: u8
slots = ArrayMap(Flow, max_entries=7)
@xdp
def rx(pkt: Packet) -> int:
    return XDP_REDIRECT
@xdp
def classify_rx(pkt: Packet) -> int:
    udp = pkt.header(Udp, Eth.size + IPv4.size)
    ip = pkt.header(IPv4, Eth.size)
    if ip is not None and ip.protocol == IPPROTO_TCP:
        flow = Flow(total=-1, last=2)
    else:
        eth = pkt.header(Eth, 0)
        if eth is not None and eth.proto == ETH_P_IP:
            flow2 = slots.get(5)
            if flow2 is not None:
                if udp:
                    if ip is None:
                        return XDP_PASS
    return XDP_PASS


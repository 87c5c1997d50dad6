from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, ETH_P_IP
# expect: hook-return at 21:12
# `verdict` is an ordinary `-> u32` function whose drop branch returns 9; the hook returns
# its result, so the hook can return 9, which is not an XDP action.


def verdict(ttl: u8) -> u32:
    if ttl <= 1:
        return 9
    return XDP_PASS


@xdp
def ttl_guard(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    ip = pkt.header(IPv4, Eth.size)
    if eth is None or ip is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip.ttl -= 1
    return verdict(ip.ttl)

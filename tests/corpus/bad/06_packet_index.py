from etran.dsl import *
# expect: packet-access at 8:8
# Reading the IPv4 version nibble by indexing the packet directly.


@xdp
def ipv4_only(pkt: Packet) -> int:
    if pkt[14] >> 4 != 4:
        return XDP_DROP
    return XDP_PASS

"""Tag untagged frames with an 802.1Q VLAN header chosen per ingress queue (head growth).

The frame grows by 4 bytes at the front; the MAC addresses move to the new
start and the tag goes between them and the original EtherType. Frames that
are already tagged, or whose queue has no VLAN configured, pass unchanged.
"""
from etran.dsl import *
from etran.bpf_templates.headers import Eth

ETH_P_8021Q = 0x8100


class Addresses(Header):
    dst: Array[u8, 6]
    src: Array[u8, 6]


class VlanEth(Header):
    dst: Array[u8, 6]
    src: Array[u8, 6]
    tpid: be16
    tci: be16
    proto: be16


class VlanConfig(Struct):
    vid: u16
    priority: u8


class Tagged(Struct):
    frames: u64


vlans = ArrayMap(VlanConfig, max_entries=16)
tagged = PerCpuArray(Tagged, max_entries=1)


@xdp
def tag(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto == ETH_P_8021Q:
        return XDP_PASS
    cfg = vlans.get(pkt.rx_queue)
    if cfg is None or cfg.vid == 0:
        return XDP_PASS
    tci = (u16(cfg.priority & 7) << 13) | (cfg.vid & 0x0FFF)
    if not pkt.resize_head(4):
        return XDP_DROP
    old = pkt.header(Addresses, 4)     # the original addresses, now 4 bytes in
    v = pkt.header(VlanEth, 0)
    if old is None or v is None:
        return XDP_DROP
    v.dst = old.dst
    v.src = old.src
    v.tpid = ETH_P_8021Q
    v.tci = tci
    c = tagged.get(0)
    if c is not None:
        c.frames += 1
    return XDP_PASS

"""`pkt.checksum` on ranges the packet chooses: offset, length and seed come from its first
bytes, so generated packets reach offsets past the end, odd lengths, empty ranges and every
chunk boundary."""
from etran.dsl import *
from etran.bpf_templates.headers import IPv4, csum_replace16, csum_replace32


class Ask(Header):
    offset: be16
    length: be16
    seed: be32


class Sums(Struct):
    asked: u32
    clipped: u32


sums = ArrayMap(Sums, max_entries=1)


@xdp
def sum_range(pkt: Packet) -> int:
    a = pkt.header(Ask, 0)
    if a is None:
        return XDP_ABORTED
    s = sums.get(0)
    if s is None:
        return XDP_ABORTED
    s.asked = pkt.checksum(u32(a.offset) & 0x7FF, u32(a.length) & 0xFFF, a.seed)
    s.clipped = pkt.checksum(8, pkt.len)
    return XDP_PASS


@xdp
def rewrite(pkt: Packet) -> int:
    """Move the IPv4 header at offset 14 to another address and id, fixing its checksum
    incrementally (RFC 1624) instead of summing again."""
    ip = pkt.header(IPv4, 14)
    if ip is None:
        return XDP_ABORTED
    new_dst = ip.src ^ 0x5A5A00FF
    new_id = ip.id + 0x1234
    ip.check = csum_replace32(ip.check, ip.dst, new_dst)
    ip.dst = new_dst
    ip.check = csum_replace16(ip.check, ip.id, new_id)
    ip.id = new_id
    return XDP_TX

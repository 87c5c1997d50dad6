"""Verifier rejection of a checker-accepted program: a view at a runtime offset, here the
last byte of the frame: "invalid access to packet, off=0 size=1, R2(id=1,off=0,r=0)".

The lowering limits the offset to 0xFFFF (`if w3 > 0xffff`) and then compares
`view + size` with data_end; the verifier only derives a packet range from that comparison
when the offset's maximum plus the size stays within MAX_PACKET_OFF (0xFFFF), so with an
offset that may be 0xFFFF the view is never proven in bounds. Offsets known to be small
(`Eth.size + ip.header_len()`) are fine. The limit should be 0xFFFF - size (and the
interpreter's MAX_PACKET_OFFSET rule follow it)."""
from etran.dsl import *


class Shim(Header):
    count: u8


@xdp
def rx(pkt: Packet) -> int:
    shim = pkt.header(Shim, pkt.len - Shim.size)
    if shim is None or shim.count > 15:
        return XDP_DROP
    return XDP_PASS

from etran.dsl import *
# expect: unsupported-syntax at 8:5
# A helper defined inside the hook.


@xdp
def rx(pkt: Packet) -> int:
    def is_jumbo(length: u32) -> bool:
        return length > 1500
    if is_jumbo(pkt.len):
        return XDP_DROP
    return XDP_PASS

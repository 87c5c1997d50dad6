from etran.dsl import *
# expect: unsupported-syntax at 7:1
# An async hook.


@xdp
async def rx(pkt: Packet) -> int:
    return XDP_PASS

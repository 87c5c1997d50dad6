from etran.dsl import *
# expect: constant at 4:11
# Capturing the boot time in a module constant: constants are evaluated at compile time.
BOOT_NS = now_ns()


@xdp
def rx(pkt: Packet) -> int:
    if now_ns() - BOOT_NS < 1_000_000_000:
        return XDP_DROP
    return XDP_PASS

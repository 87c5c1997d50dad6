from etran.dsl import *
import etran.bpf_templates.headers
# expect: import at 2:1
# The `import x` form; the language only has `from x import name`.


@xdp
def rx(pkt: Packet) -> int:
    return XDP_PASS

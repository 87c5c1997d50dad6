"""@egress built for the native path: the program runs as XDP on the far end of a veth pair.

Mainline Linux has no egress hook for AF_XDP frames. The runtime's first answer runs
@egress with BPF_PROG_TEST_RUN on each frame and does what the verdict says
(etran.runtime.hooks.Egress). The native path (etran.runtime.native) is the other answer
docs/runtime.md measured: the application's AF_XDP socket transmits on one end of a veth
pair inside the host, and @egress runs as ordinary XDP on the other end, where every frame
the application sends arrives and from where nothing leaves but through the program. There
the kernel, not the runtime, acts on the verdict, and XDP's verdicts on a veth mean other
things, so for each verdict @egress means, a native build returns:

* XDP_TX (the frame leaves the host): `bpf_redirect_map(__etran_uplink, 0, XDP_DROP)`, out
  of the host's interface;
* XDP_REDIRECT (back to the application): XDP_TX, back along the veth to the application's
  end, whose program hands it to the application's socket;
* XDP_DROP, XDP_ABORTED (dropped): the same;
* XDP_PASS (an error in the test-run path): XDP_DROP, since nothing may reach the host's
  stack this way.

`__etran_uplink` is a hidden one-slot DevMap the runtime fills with the host's interface.
The translation is made where the hook returns (`FunctionLowering.ret_verdict`), so the
program's own code, and what the checker and the interpreter say of it, are unchanged.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from etran.abi import REDIRECT_MAP, XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX
from etran.ir.types import U32, MapType

if TYPE_CHECKING:
    import llvmlite.ir as ir

    from etran.lower.function import FunctionBase

UPLINK_MAP = "__etran_uplink"


def uplink_map() -> MapType:
    """The hidden DevMap whose slot 0 the runtime sets to the host's interface."""
    return MapType(UPLINK_MAP, "DevMap", U32, None, 1)


def lower_return(fl: FunctionBase, verdict: ir.Value) -> None:
    """Return what the native path must return for `verdict` (the list above). (llvmlite
    is imported here: the runtime reads UPLINK_MAP from this module without the compiler.)"""
    import llvmlite.ir as ir

    from etran.lower.context import I32, I64
    b = fl.b
    out = fl.new_block("native.out")
    back = fl.new_block("native.back")
    b.cbranch(b.icmp_unsigned("==", verdict, ir.Constant(I32, XDP_TX)), out, back)
    b.position_at_end(out)
    r = fl.helper(REDIRECT_MAP, I64, [fl.lw.map_globals[UPLINK_MAP], ir.Constant(I64, 0),
                                      ir.Constant(I64, XDP_DROP)])
    b.ret(b.trunc(r, I32))
    b.position_at_end(back)
    redirected = b.icmp_unsigned("==", verdict, ir.Constant(I32, XDP_REDIRECT))
    passed = b.icmp_unsigned("==", verdict, ir.Constant(I32, XDP_PASS))
    b.ret(b.select(redirected, ir.Constant(I32, XDP_TX),
                   b.select(passed, ir.Constant(I32, XDP_DROP), verdict)))

"""@egress run natively, on the far end of the application's own veth pair.

::

    host namespace
      application's AF_XDP socket ── etran-app ══veth══ etran-egr ── @egress (native XDP)
                                        ▲                               │ XDP_TX (sent): redirected
            etran_to_app (XDP): hands   │                               ▼ to the uplink
            back what @egress returned ─┘                          etran-eth0 ── the switch

Every frame the application transmits arrives at `etran-egr`, where the transport's @egress
program runs as ordinary XDP, built for this path (`compile_program(...,
native_egress=True)`, etran.lower.native: XDP_TX becomes a redirect to the host's interface,
XDP_REDIRECT a bounce back to `etran-app`, XDP_PASS a drop). Nothing the application sends
can leave the host without passing the program, which the test-run path
(etran.runtime.hooks.Egress) cannot promise: there, whoever runs the program could also skip
it. It is also the faster path (docs/runtime.md: 4.1 us a frame against 11.3).

The kernel acts on the verdicts, so `send` learns nothing about a frame's fate directly:
frames @egress returned arrive on the same socket (`recv_returned`), in order, usually before
`send` returns (copy-mode AF_XDP transmits, and the veths' XDP runs, in the sending thread's
softirq), but not always.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Mapping
from itertools import repeat
from types import TracebackType

from etran.lower.native import UPLINK_MAP
from etran.runtime import netns
from etran.runtime.afxdp import XskSocket
from etran.runtime.attach import XdpLink, attach_xdp, attached_program_ids, builtin_object
from etran.runtime.errors import EtranRuntimeError
from etran.runtime.loader import LoadedObject, Program
from etran.runtime.maps import Map
from etran.runtime.netns import Interface

APP_IF = "etran-app"     # the application's end of the pair
EGRESS_IF = "etran-egr"  # where @egress runs

# The application's end hands each frame @egress returned to the application's socket (an
# AF_XDP socket only receives what an XDP program on its device redirects to it).
RETURN_SOURCE = """from etran.dsl import *

app = XskMap(max_entries=64)


@xdp
def etran_to_app(pkt: Packet) -> int:
    return app.redirect(pkt.rx_queue, XDP_DROP)
"""


class NativeEgress:
    """The native path on `uplink`'s host for a native build's @egress program `program`
    and its object's `maps`: the veth pair made, @egress attached to its far end, the
    uplink set, and an AF_XDP socket on the near end for the application.

    `send(frames)` transmits; `recv_returned` (or `take_returned`) takes what @egress
    returned; `fileno()` (or `wakeup_fd()`) polls for those; each is thread-safe. `close()`
    (or `with`) detaches both programs and removes the pair. One per host: a second is
    refused.
    """

    def __init__(self, maps: Mapping[str, Map], program: Program, uplink: Interface) -> None:
        action = f"start the native egress path of {program.name!r} on {uplink}"
        if uplink.netns is None:
            raise EtranRuntimeError(action, "the interface must be a host's, inside its network "
                                    "namespace (etran.runtime.topology)")
        if UPLINK_MAP not in maps:
            raise EtranRuntimeError(action, "the object is not a native build (compile it with "
                                    "native_egress=True)")
        self.program = program
        self.uplink = uplink
        self._lock = threading.Lock()
        self._rx_lock = threading.Lock()
        self._closers: list[XdpLink] = []
        self._made = False
        self.xsk: XskSocket | None = None
        self._return: LoadedObject | None = None
        try:
            self._make_pair(action)
            app = netns.interface(uplink.netns, APP_IF)
            egr = netns.interface(uplink.netns, EGRESS_IF)
            with uplink.entered():      # a DevMap reads the ifindex in the caller's namespace
                maps[UPLINK_MAP].update(bytes(4), uplink.ifindex.to_bytes(4, "little"))
            self._return = builtin_object(RETURN_SOURCE, "etran_to_app")
            self._closers.append(attach_xdp(self._return.programs["etran_to_app"], app))
            self._closers.append(attach_xdp(program, egr))
            self.xsk = XskSocket(app)
            self.xsk.register(self._return.maps["app"])
        except BaseException:
            self.close()
            raise
        self.interface = app

    def _make_pair(self, action: str) -> None:
        from etran.runtime.topology import checksum_offload_off
        namespace = self.uplink.netns
        assert namespace is not None
        with netns.netlink(namespace) as ipr:
            existing = ipr.link_lookup(ifname=APP_IF)
            if existing:
                if EGRESS_IF in attached_program_ids(namespace):
                    raise EtranRuntimeError(action, f"the host already has {APP_IF} with "
                                            f"@egress on {EGRESS_IF} (one native egress path "
                                            "per host; is another application running?)")
                # left by a process that died: its programs went with it, the pair stayed
                ipr.link("del", index=existing[0])
            ipr.link("add", ifname=APP_IF, kind="veth", peer=EGRESS_IF)
            self._made = True
            for name in (APP_IF, EGRESS_IF):
                ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")
        for name in (APP_IF, EGRESS_IF):
            checksum_offload_off(namespace, name)

    # ---- the application side

    def send(self, frames: Iterable[bytes]) -> int:
        """Transmit `frames` through @egress; how many were queued."""
        return self.send_parts(zip(frames, repeat(b"")))

    def send_parts(self, frames: Iterable[tuple[bytes | bytearray, bytes | bytearray]]) -> int:
        """`send` for (head, body) pairs (`XskSocket.send_parts`)."""
        if self.xsk is None:
            raise EtranRuntimeError(f"send through {self.program.name!r}", "the path is closed")
        with self._lock:
            return self.xsk.send_parts(frames)

    def recv_returned(self, max_frames: int = 64, timeout: float | None = 0.0) -> list[bytes]:
        """Frames @egress returned (XDP_REDIRECT), oldest first; `timeout` as for
        `XskSocket.recv` (0: what is there now)."""
        if self.xsk is None:
            return []
        with self._rx_lock:
            return self.xsk.recv(max_frames, timeout=timeout)

    def returned_waiting(self) -> int:
        """How many returned frames wait to be taken (read off the ring: no system call)."""
        return 0 if self.xsk is None else self.xsk.waiting()

    def take_returned(self, max_frames: int) -> list[bytes]:
        """What @egress returned, now (`Egress.take_returned`'s counterpart)."""
        return self.recv_returned(max_frames, 0.0)

    def fileno(self) -> int:
        if self.xsk is None:
            raise EtranRuntimeError(f"poll {self.program.name!r}", "the path is closed")
        return self.xsk.fileno()

    def wakeup_fd(self) -> int:
        """Readable when @egress returned something (`Egress.wakeup_fd`'s counterpart)."""
        return self.fileno()

    def entered(self) -> contextlib.AbstractContextManager[None]:
        """Nothing to enter: sending needs no namespace (for EgressPump's thread)."""
        return contextlib.nullcontext()

    def close(self) -> None:
        if self.xsk is not None:
            self.xsk.close()
            self.xsk = None
        while self._closers:
            self._closers.pop().close()
        if self._return is not None:
            self._return.close()
            self._return = None
        if self._made:
            self._made = False
            with contextlib.suppress(Exception), netns.netlink(self.uplink.netns) as ipr:
                ipr.link("del", ifname=APP_IF)

    def __enter__(self) -> NativeEgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

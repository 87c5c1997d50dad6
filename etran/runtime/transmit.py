"""Where the runtime's own hooks run and send: one host interface, seen from inside its host.

``@egress`` and ``@gen`` have no attachment point in mainline Linux, so the runtime runs them
with BPF_PROG_TEST_RUN as if the frame had arrived on the host's interface (the context's
``ingress_ifindex`` and ``rx_queue_index``, which the kernel resolves in the *calling*
thread's namespace, so each batch of runs happens inside the host's namespace), reads the
verdict and the finished frame the kernel hands back, and honours the verdict itself:
XDP_TX is transmitted out of the interface through an AF_PACKET socket bound to it.

Why not live frames (``BPF_F_TEST_XDP_LIVE_FRAMES``), where the kernel honours the verdict
itself: some kernels refuse live-frames runs with EPERM (seen on virtual machines whose
sandbox withholds CAP_SYS_RESOURCE), and a live run reports neither the verdict nor the frame,
so the runtime could not count, route or explain what happened. A test run plus one
``send(2)`` is also faster (docs/runtime.md has the numbers).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import time

from etran.runtime import netns
from etran.runtime.errors import EtranRuntimeError
from etran.runtime.loader import Program, TestRunResult, XdpContext
from etran.runtime.netns import Interface

_FULL_RETRIES = 8          # a full device queue (ENOBUFS) is retried, backing off ...
_FULL_WAIT = 0.00005       # ... from 50 us; veth drains its ring in NAPI within that
_SOL_PACKET = 263
_PACKET_QDISC_BYPASS = 20


def context_for(interface: Interface, queue: int = 0) -> XdpContext:
    """The ``xdp_md`` of a frame arriving on ``queue`` of ``interface``."""
    return XdpContext(ingress_ifindex=interface.ifindex, rx_queue_index=queue)


class HostPort:
    """Runs programs as if frames arrived on ``interface`` and transmits frames out of it.

    The namespace handle is held open, so entering it costs two setns(2) calls; the AF_PACKET
    socket is created inside the namespace (a socket belongs to the namespace it was made in)
    and sends from any thread afterwards. Close it (or use ``with``) before the topology goes:
    the handle keeps the namespace alive.
    """

    def __init__(self, interface: Interface, queue: int = 0) -> None:
        self.interface = interface
        self.ctx = context_for(interface, queue)
        self._entry = netns.Entry(interface.netns) if interface.netns else None
        self._sock: socket.socket | None = None
        self.dropped = 0  # frames the device had no room for (see transmit)
        try:
            with self.entered():
                self._sock = _packet_socket(interface)
        except BaseException:
            self.close()
            raise

    def entered(self) -> contextlib.AbstractContextManager[None]:
        """The calling thread inside the interface's namespace for the ``with`` block."""
        return self._entry.entered() if self._entry is not None else contextlib.nullcontext()

    def run(self, program: Program, frame: bytes) -> TestRunResult:
        """One test run of ``program`` on ``frame`` as received here (call it inside
        :meth:`entered`); the verdict and the finished frame."""
        return program.test_run(frame, ctx=self.ctx)

    def transmit(self, frame: bytes) -> bool:
        """Send ``frame`` (a whole Ethernet frame) out of the interface; False when the
        device's queue stayed full (the frame is dropped, as a NIC drops on a full ring:
        counted in ``dropped``, for the transport to recover like any loss)."""
        if self._sock is None:
            raise EtranRuntimeError(f"send a frame out of {self.interface}", "the port is closed")
        for attempt in range(_FULL_RETRIES):
            try:
                self._sock.send(frame)
                return True
            except OSError as exc:
                if exc.errno not in (errno.ENOBUFS, errno.EAGAIN):
                    raise EtranRuntimeError(
                        f"send a {len(frame)}-byte frame out of {self.interface}",
                        f"{exc.strerror or exc}; is the interface up and the frame no longer "
                        "than its MTU plus 14?") from exc
                time.sleep(_FULL_WAIT * (attempt + 1))
        self.dropped += 1
        return False

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._entry is not None:
            self._entry.close()

    def __enter__(self) -> HostPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _packet_socket(interface: Interface) -> socket.socket:
    action = f"open a packet socket on {interface}"
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except PermissionError:
        raise EtranRuntimeError(action, "sending frames needs CAP_NET_RAW: run as root") from None
    try:
        # Frames go straight to the device: veth has no queue worth waiting in, and this
        # keeps one frame per send(2) without the qdisc layer's locking.
        sock.setsockopt(_SOL_PACKET, _PACKET_QDISC_BYPASS, 1)
        sock.bind((interface.name, 0))
    except OSError as exc:
        sock.close()
        raise EtranRuntimeError(action, f"{exc.strerror or exc}; is the topology still up?"
                                ) from exc
    return sock

"""Run an XDP program on a frame for real: BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES.

In live mode the kernel runs the program on the frame as if it had arrived on
``ingress_ifindex`` and then honours the verdict: XDP_TX (turned into a redirect to the same
interface) sends the frame out of that interface, XDP_REDIRECT goes where the program sent it
(an XSKMAP entry, another device), XDP_PASS injects it into that host's stack, XDP_DROP drops
it. That is how etran runs hooks that have no kernel attachment point on mainline Linux:
``@egress`` on the frames an application sends, and the frames a ``@gen`` program makes.

What the kernel requires (kernel-probe.md section 7, net/bpf/test_run.c):

* the call must come from a thread inside the interface's namespace, because the ifindex in
  the context is looked up there;
* no data_out or ctx_out may be asked for, and nothing comes back: not the frame and not the
  verdict (``retval`` is always 0), so a caller that needs the verdict runs the program
  without live mode first (see :mod:`etran.runtime.hooks`);
* in native mode the interface's veth *peer* must have an XDP program, or frames sent with
  XDP_TX vanish (the syscall still succeeds); every etran topology puts one there;
* ``repeat`` runs the program that many times on copies of the same input frame; each call
  sets up a page pool, the fixed cost per call measured in docs/runtime.md.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable

from etran.abi import BPF_F_TEST_XDP_LIVE_FRAMES
from etran.runtime import netns
from etran.runtime.loader import Program, XdpContext
from etran.runtime.netns import Interface


@functools.cache
def check_live_frames() -> None:
    """Raise :class:`~etran.runtime.errors.NotSupported` when this kernel refuses live-frames
    runs (a drop program is run once, live, in this namespace: nothing is sent)."""
    from etran.runtime.attach import builtin_object
    with builtin_object(DROP_SOURCE, "etran_drop") as obj:
        obj.programs["etran_drop"].test_run(bytes(64), ctx=XdpContext(),
                                            flags=BPF_F_TEST_XDP_LIVE_FRAMES)


DROP_SOURCE = """from etran.dsl import *

@xdp
def etran_drop(pkt: Packet) -> int:
    return XDP_DROP
"""


def context_for(interface: Interface, queue: int = 0) -> XdpContext:
    """The ``xdp_md`` of a frame arriving on ``queue`` of ``interface``."""
    return XdpContext(ingress_ifindex=interface.ifindex, rx_queue_index=queue)


def run_live(program: Program, frame: bytes, interface: Interface, *, queue: int = 0,
             repeat: int = 1, batch_size: int = 0) -> int:
    """Run ``program`` live on ``frame`` as received on ``interface`` (``repeat`` times);
    returns the kernel's mean nanoseconds per run. Raises
    :class:`~etran.runtime.errors.BpfError` when the kernel refuses the run."""
    with LiveInjector(interface, queue) as runner:
        return runner.run(program, frame, repeat=repeat, batch_size=batch_size)


class LiveInjector:
    """Live runs on one interface, its namespace held open so entering it is cheap.

    One-shot: ``with LiveInjector(iface) as live: live.run_each(program, frames)`` (the thread
    is inside the namespace for the block). Long-lived (what :mod:`.hooks` does): keep the
    runner, wrap each batch in ``with runner.entered():``, and ``close()`` it before the
    topology goes (an open runner keeps the namespace alive).
    """

    def __init__(self, interface: Interface, queue: int = 0) -> None:
        self.interface = interface
        self.ctx = context_for(interface, queue)
        self._entry = netns.Entry(interface.netns) if interface.netns else None
        self._inside: contextlib.ExitStack | None = None

    def entered(self) -> contextlib.AbstractContextManager[None]:
        """The calling thread inside the interface's namespace for the ``with`` block."""
        return self._entry.entered() if self._entry is not None else contextlib.nullcontext()

    def close(self) -> None:
        if self._entry is not None:
            self._entry.close()

    def __enter__(self) -> LiveInjector:
        stack = contextlib.ExitStack()
        stack.callback(self.close)
        try:
            stack.enter_context(self.entered())
        except BaseException:
            stack.close()
            raise
        self._inside = stack
        return self

    def __exit__(self, *exc: object) -> None:
        if self._inside is not None:
            self._inside.close()
            self._inside = None

    def run(self, program: Program, frame: bytes, *, repeat: int = 1,
            batch_size: int = 0) -> int:
        """One live call (from inside the namespace); the mean nanoseconds per run as the
        kernel measured it."""
        return program.test_run(frame, ctx=self.ctx, repeat=repeat,
                                flags=BPF_F_TEST_XDP_LIVE_FRAMES, batch_size=batch_size,
                                ).duration_ns

    def run_each(self, program: Program, frames: Iterable[bytes]) -> int:
        """One live call per frame, in order (from inside the namespace); returns how many
        were run."""
        count = 0
        for frame in frames:
            program.test_run(frame, ctx=self.ctx, flags=BPF_F_TEST_XDP_LIVE_FRAMES)
            count += 1
        return count

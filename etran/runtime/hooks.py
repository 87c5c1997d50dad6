"""The hooks mainline Linux lacks, run by the runtime: ``@egress`` and ``@gen``.

Both run as BPF_PROG_TEST_RUN of the compiled program on a frame, as if the frame had arrived
on the host's interface (:class:`~etran.runtime.transmit.HostPort`); the kernel hands back the
verdict and the finished frame, and the runtime honours the verdict:

* XDP_TX: the frame leaves the host through its interface;
* XDP_DROP, XDP_ABORTED: nothing is sent (for ``@gen``: the round is over);
* XDP_REDIRECT from ``@egress``: the frame goes back to the application that sent it (how a
  transport hands a frame it may not send yet, or a notice, to its application; the only
  redirect target ``@egress`` can use, which the checker enforces: no DevMap redirect there);
  from ``@gen``, and XDP_PASS from either, are reported as errors: mainline gives a test run no
  way to hand a frame to a socket or to the host's stack.

``@egress`` (:class:`Egress`) runs on every frame the application sends. ``@gen``
(:class:`Gen`) makes frames (ACKs, grants): the runtime runs it after each receive batch and
whenever a program asks (:class:`GenPump`: a ring-buffer record or a non-zero flag in a map),
again and again on a zeroed template until it returns XDP_DROP ("nothing more to send"). Map
side effects happen once per run, exactly as the program says. docs/runtime.md explains the
choice of mechanism, with the measurements.

``@timer`` handlers run in the kernel and cannot send. One that needs a frame sent raises a
flag in a map (or writes a ring-buffer record), and a pump thread of the runtime acts on it:
:class:`GenPump` runs gen, :class:`EgressPump` pushes a given frame (a retransmission
timeout's dummy frame, say) through egress, whose program decides what the frame becomes.

:class:`Endpoint` is what an application holds: an AF_XDP socket for receiving, the egress
path for sending, and gen run after each batch it receives. It exposes frames only.
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Self

from etran.abi import (
    RINGBUF_MAP_TYPE,
    XDP_ABORTED,
    XDP_ACTION_NAMES,
    XDP_DROP,
    XDP_REDIRECT,
    XDP_TX,
)
from etran.runtime.afxdp import XskSocket
from etran.runtime.errors import EtranRuntimeError
from etran.runtime.loader import Program
from etran.runtime.maps import Map, RingBufferReader
from etran.runtime.netns import Interface
from etran.runtime.transmit import HostPort

if TYPE_CHECKING:
    from etran.runtime.native import NativeEgress


def _unhonoured(hook: str, program: Program, verdict: int, allowed: str) -> EtranRuntimeError:
    name = XDP_ACTION_NAMES.get(verdict, str(verdict))
    return EtranRuntimeError(f"run {hook} program {program.name!r}",
                             f"it returned {name}; {allowed}")


class Egress:
    """Runs an ``@egress`` program on each frame an application sends from ``interface``.

    Frames the program redirects come back to the application: :meth:`take_returned` hands
    them out (:class:`Endpoint.recv` does), and :meth:`wakeup_fd` becomes readable when
    there are some, so a receiver can wait for them and for its socket at once.
    """

    def __init__(self, program: Program, interface: Interface, queue: int = 0) -> None:
        self.program = program
        self.interface = interface
        self.frames = 0  # how many frames went through the program
        self.sent = 0  # ... and left the host (XDP_TX)
        self.dropped = 0  # ... were dropped (XDP_DROP, XDP_ABORTED)
        self.returned = 0  # ... went back to the application (XDP_REDIRECT)
        self._lock = threading.Lock()
        self._back: collections.deque[bytes] = collections.deque()
        self._last: bytes | None = None  # the frame the last run returned, as it left it
        self._port = HostPort(interface, queue)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def entered(self) -> contextlib.AbstractContextManager[None]:
        """The calling thread inside the host's namespace for the ``with`` block: a thread
        that sends often can stay there, and each send then enters nothing."""
        return self._port.entered()

    def send(self, frames: Iterable[bytes]) -> int:
        """Run the program on every frame, in order, and do what each verdict says; returns
        how many frames it ran on (``sent``, ``dropped`` and ``returned`` count the verdicts).
        Thread-safe: calls do not overlap (the application and an :class:`EgressPump` share
        one path, as frames share one transmit queue), so the program sees one frame at a
        time and its per-flow state is never updated by two sends at once."""
        frames = list(frames)
        with self._lock, self._port.entered():
            for frame in frames:
                if self._run(frame) == XDP_REDIRECT:
                    self._back.append(frame if self._last is None else self._last)
                    if len(self._back) == 1:
                        os.write(self._wake_w, b"\0")
        return len(frames)

    def send_until_refused(self, frames: list[bytes]) -> tuple[int, int, bytes | None]:
        """Run the program on each frame in order, in one entry into the namespace, doing
        what each verdict says, and stop at the first frame it does not send (XDP_TX): that
        frame is not queued for :meth:`take_returned` but returned here, as the program left
        it, with how many were sent and the verdict (XDP_TX when all went). Frames after a
        refused one are not run, so a library sending a stream (TCP's) keeps its order and
        learns at once where the program stopped it."""
        sent = 0
        with self._lock, self._port.entered():
            for frame in frames:
                verdict = self._run(frame)
                if verdict != XDP_TX:
                    return sent, verdict, self._last
                sent += 1
        return sent, XDP_TX, None

    def _run(self, frame: bytes) -> int:
        port = self._port
        result = port.run(self.program, frame)
        self._last = None
        self.frames += 1
        if result.retval == XDP_TX:
            port.transmit(result.data)
            self.sent += 1
        elif result.retval in (XDP_DROP, XDP_ABORTED):
            self.dropped += 1
        elif result.retval == XDP_REDIRECT:
            self._last = result.data
            self.returned += 1
        else:
            raise _unhonoured("egress", self.program, result.retval,
                              "a frame the application sends can only be sent (XDP_TX), "
                              "dropped (XDP_DROP) or returned to the application "
                              "(XDP_REDIRECT to its socket)")
        return result.retval

    def returned_waiting(self) -> int:
        """How many redirected frames wait in :meth:`take_returned`."""
        return len(self._back)

    def take_returned(self, max_frames: int) -> list[bytes]:
        """Up to ``max_frames`` frames the program redirected back, oldest first."""
        with self._lock:
            out = [self._back.popleft() for _ in range(min(max_frames, len(self._back)))]
            if not self._back:
                _drain(self._wake_r)
            return out

    def wakeup_fd(self) -> int:
        """Readable while redirected frames wait in :meth:`take_returned`."""
        return self._wake_r

    def close(self) -> None:
        """Let go of the namespace and the sockets (the program belongs to its object)."""
        self._port.close()
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def __enter__(self) -> Egress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 64):
            pass
    except BlockingIOError:
        pass


class Gen:
    """Runs a ``@gen`` program on ``interface`` until it has nothing more to send."""

    def __init__(self, program: Program, interface: Interface, *, frame_size: int = 128,
                 max_frames: int = 256, queue: int = 0) -> None:
        if frame_size < 14:
            raise EtranRuntimeError(f"set up gen program {program.name!r}",
                                    "frame_size must hold at least an Ethernet header (14)")
        self.program = program
        self.interface = interface
        self.template = bytes(frame_size)
        self.max_frames = max_frames
        self.sent = 0  # frames transmitted out of the interface
        self.rounds = 0
        self._lock = threading.Lock()
        self._port = HostPort(interface, queue)

    def entered(self) -> contextlib.AbstractContextManager[None]:
        """As :meth:`Egress.entered`."""
        return self._port.entered()

    def run(self) -> int:
        """One round: run until XDP_DROP/XDP_ABORTED or ``max_frames`` frames; returns how
        many frames the round emitted. Thread-safe (rounds do not overlap)."""
        port = self._port
        with self._lock, port.entered():
            self.rounds += 1
            emitted = 0
            while emitted < self.max_frames:
                result = port.run(self.program, self.template)
                if result.retval == XDP_TX:
                    port.transmit(result.data)
                    self.sent += 1
                elif result.retval in (XDP_DROP, XDP_ABORTED):
                    break
                else:
                    raise _unhonoured("gen", self.program, result.retval,
                                      "a generated frame can only be sent (XDP_TX) or end "
                                      "the round (XDP_DROP)")
                emitted += 1
            return emitted

    def close(self) -> None:
        self._port.close()

    def __enter__(self) -> Gen:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class _Pump:
    """A thread that does something whenever a program asks for it (see :class:`GenPump`)."""

    def __init__(self, what: str, *, ring: Map | None, flag: tuple[Map, bytes] | None,
                 interval: float) -> None:
        if ring is None and flag is None:
            raise EtranRuntimeError(f"start the {what}", "give a ring buffer, a flag, or both")
        if ring is not None and ring.map_type != RINGBUF_MAP_TYPE:
            raise EtranRuntimeError(f"start the {what}", f"map {ring.name!r} is not a RingBuf")
        self.flag = flag
        self.interval = interval
        self.error: BaseException | None = None
        self._reader = RingBufferReader(ring) if ring is not None else None
        self._ring_fd = ring.fd if ring is not None else -1
        # ask() from user space: an eventfd the thread polls with the ring
        self._event = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"etran-{what.replace(' ', '-')}",
                                        daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        raise NotImplementedError

    def _inside(self) -> contextlib.AbstractContextManager[None]:
        """Where the thread lives: inside the host's namespace, so that its rounds enter
        nothing (etran.runtime.netns skips a setns(2) pair into the namespace a thread is
        already in)."""
        return contextlib.nullcontext()

    def ask(self) -> None:
        """Ask from user space: the thread wakes at once (a flag set from user space would
        wait for the thread's next look at it)."""
        if self._event >= 0:
            os.eventfd_write(self._event, 1)

    def _asked(self) -> bool:
        asked = False
        try:
            os.eventfd_read(self._event)
            asked = True
        except BlockingIOError:
            pass
        if self._reader is not None and self._reader.drain():
            asked = True
        if self.flag is not None:
            flag_map, key = self.flag
            value = flag_map.lookup(key)
            if value is not None and any(value):
                flag_map.update(key, bytes(len(value)))
                asked = True
        return asked

    def _loop(self) -> None:
        poller = select.poll()
        poller.register(self._event, select.POLLIN)
        if self._ring_fd >= 0:
            poller.register(self._ring_fd, select.POLLIN)
        try:
            with self._inside():
                while not self._stop.is_set():
                    if self._asked():
                        self._serve()
                        continue
                    poller.poll(max(1, int(self.interval * 1000)))
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def stop(self) -> None:
        """Stop the thread; re-raises what made it stop early, if anything did."""
        self._stop.set()
        self.ask()                       # out of its poll at once
        self._thread.join()
        if self._event >= 0:
            os.close(self._event)
            self._event = -1
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# How often a pump woken by ring records also reads its flag, in case a record was lost to a
# full ring (what TCP's stack uses). A safety net: a record is written when the flag rises,
# the ring can only be full of records not read yet (whose wake-up is still to come), and
# the pump reads the flag again after every round. Each look costs: the pump's thread wakes
# and must take the interpreter lock from an application thread that is busy-polling its
# socket. Read every millisecond, the flags cost TCP's 64-byte round trip a third of its
# p99; every 20 ms, the two pumps' looks still made it 1.3 to 1.4 times what it is without
# them (docs/tcp.md, "The stack's own threads"). Homa's gen pump keeps looking every 20 ms
# (`FLAG_LOOK` in etran/homa/stack.py): without it, RPCs stalled (docs/homa.md).
FALLBACK_FLAG_INTERVAL = 1.0


class GenPump(_Pump):
    """A thread that runs ``gen`` whenever a program asks for it.

    Asking means writing a record to the ring buffer ``ring`` (its contents are ignored), or
    setting the map value at ``flag`` = (map, key) to anything non-zero (the pump zeroes it
    before the round, so a request made during the round starts another). ``interval`` is how
    often the flag is read; ring records wake the pump at once.
    """

    def __init__(self, gen: Gen, *, ring: Map | None = None,
                 flag: tuple[Map, bytes] | None = None, interval: float = 0.001) -> None:
        self.gen = gen
        super().__init__("gen pump", ring=ring, flag=flag, interval=interval)

    def _inside(self) -> contextlib.AbstractContextManager[None]:
        return self.gen.entered()

    def _serve(self) -> None:
        # A round that stopped at max_frames left work behind: go on at once.
        while self.gen.run() >= self.gen.max_frames and not self._stop.is_set():
            pass


class EgressPump(_Pump):
    """A thread that sends ``frame`` through ``egress`` whenever a program asks for it: how a
    timer, which cannot send, gets the egress program to act (eTran turns a timeout into a
    dummy frame the same way).

    Asking works as for :class:`GenPump` (a ring-buffer record, or a non-zero value at
    ``flag``, zeroed before the frame is sent); each time the pump is asked it sends ``frame``
    once. The program does the work (for a retransmission timeout: go back N and turn the
    frame into a notice for the application, redirected to its socket) and asks again if
    there is more to do, so a program that found nothing drops the frame and the pump waits.
    ``sent`` counts the frames pushed.
    """

    def __init__(self, egress: Egress | NativeEgress, frame: bytes, *, ring: Map | None = None,
                 flag: tuple[Map, bytes] | None = None, interval: float = 0.001) -> None:
        if len(frame) < 14:
            raise EtranRuntimeError(f"start the egress pump of {egress.program.name!r}",
                                    "the frame must hold at least an Ethernet header (14)")
        self.egress = egress
        self.frame = bytes(frame)
        self.sent = 0
        super().__init__("egress pump", ring=ring, flag=flag, interval=interval)

    def _inside(self) -> contextlib.AbstractContextManager[None]:
        return self.egress.entered()

    def _serve(self) -> None:
        self.sent += self.egress.send([self.frame])


class Endpoint:
    """An application's view of a transport on one host: send and receive frames.

    Received frames come from the AF_XDP socket ``xsk`` (which the runtime registered in the
    transport's XSKMAP) and from ``egress`` when its program redirects a frame back; after
    each non-empty batch the host's ``gen`` runs. Sent frames go through ``egress`` when the
    transport has one, else straight into the socket's TX ring.
    """

    def __init__(self, xsk: XskSocket, *, egress: Egress | None = None,
                 gen: Gen | None = None) -> None:
        self._xsk = xsk
        self._egress = egress
        self._gen = gen

    def send(self, frames: Iterable[bytes], timeout: float | None = None) -> int:
        if self._egress is not None:
            return self._egress.send(frames)
        return self._xsk.send(frames, timeout)

    def recv(self, max_frames: int = 64, timeout: float | None = None) -> list[bytes]:
        """Up to ``max_frames`` frames: those egress returned first, then the socket's.
        ``timeout`` as for :meth:`XskSocket.recv`."""
        if self._egress is None:
            frames = self._xsk.recv(max_frames, timeout)
        else:
            frames = self._recv_both(max_frames, timeout)
        if frames and self._gen is not None:
            self._gen.run()
        return frames

    def _recv_both(self, max_frames: int, timeout: float | None) -> list[bytes]:
        assert self._egress is not None
        wait = timeout if timeout is not None else (None if self._xsk.blocking else 0.0)
        deadline = None if wait is None else time.monotonic() + wait
        poller = select.poll()
        poller.register(self._xsk.fileno(), select.POLLIN)
        poller.register(self._egress.wakeup_fd(), select.POLLIN)
        while True:
            frames = self._egress.take_returned(max_frames)
            frames += self._xsk.recv(max_frames - len(frames), timeout=0)
            if frames:
                return frames
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return []
            poller.poll(None if remaining is None else max(0, int(remaining * 1000 + 0.999)))

    def fileno(self) -> int:
        return self._xsk.fileno()

    def close(self) -> None:
        """Close the socket and the egress path (the gen runner may serve other endpoints and
        is closed by its owner)."""
        self._xsk.close()
        if self._egress is not None:
            self._egress.close()

    def __enter__(self) -> Endpoint:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

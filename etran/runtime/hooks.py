"""The hooks mainline Linux lacks, run by the runtime: ``@egress`` and ``@gen``.

``@egress`` (:class:`Egress`) runs on every frame the application sends, before the frame
leaves the host: each frame goes through one live run of the program (:mod:`.live`) as if it
had arrived on the host's interface, and the verdict decides: XDP_TX transmits it out of the
interface, XDP_DROP drops it, XDP_REDIRECT into the XSKMAP loops it back to the application,
XDP_PASS hands it to the host's own stack. docs/runtime.md explains why this mechanism was
chosen over an XDP program on a veth peer, with the measurements.

``@gen`` (:class:`Gen`) makes frames (ACKs, grants): the runtime runs it after each receive
batch and whenever a program asks (:class:`GenPump`: a ring-buffer record or a non-zero flag
in a map), again and again until it returns XDP_DROP ("nothing more to send"). A live run
reports no verdict, so each round is two runs: the gen program on a zeroed template frame
*without* live mode (the verdict and the finished frame come back; map side effects happen
once), then, for XDP_TX or XDP_PASS, a live run of the built-in XDP_TX or XDP_PASS program on
that finished frame to send it out of the interface or into the host's stack. XDP_REDIRECT
cannot be honoured this way and is reported as an error.

``@timer`` handlers run in the kernel and cannot send. One that needs a frame sent raises a
flag in a map (or writes a ring-buffer record), and a pump thread of the runtime acts on it:
:class:`GenPump` runs gen, :class:`EgressPump` pushes a given frame (a retransmission
timeout's dummy frame, say) through egress, whose program decides what the frame becomes.

:class:`Endpoint` is what an application holds: an AF_XDP socket for receiving, the egress
path for sending, and gen run after each batch it receives. It exposes frames only.
"""

from __future__ import annotations

import select
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Self

from etran.abi import RINGBUF_MAP_TYPE, XDP_ABORTED, XDP_ACTION_NAMES, XDP_DROP, XDP_PASS, XDP_TX
from etran.runtime.afxdp import XskSocket
from etran.runtime.attach import pass_object, tx_object
from etran.runtime.errors import EtranRuntimeError
from etran.runtime.inject import LiveInjector
from etran.runtime.loader import LoadedObject, Program
from etran.runtime.maps import Map, RingBufferReader
from etran.runtime.netns import Interface


class Egress:
    """Runs an ``@egress`` program on each frame an application sends from ``interface``."""

    def __init__(self, program: Program, interface: Interface, queue: int = 0) -> None:
        self.program = program
        self.interface = interface
        self.frames = 0  # how many frames went through the program
        self._lock = threading.Lock()
        self._live = LiveInjector(interface, queue)

    def send(self, frames: Iterable[bytes]) -> int:
        """Run the program live on every frame, in order; returns how many it ran on (its
        verdicts, and so how many left the host, are not reported by the kernel).
        Thread-safe: calls do not overlap (the application and an :class:`EgressPump` share
        one path, as frames share one transmit queue), so the program sees one frame at a
        time and its per-flow state is never updated by two sends at once."""
        frames = list(frames)
        with self._lock, self._live.entered():
            count = self._live.run_each(self.program, frames)
            self.frames += count
        return count

    def close(self) -> None:
        """Let go of the namespace handle (the program belongs to its loaded object)."""
        self._live.close()

    def __enter__(self) -> Egress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


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
        self.passed = 0  # frames handed to the host's stack
        self.rounds = 0
        self._lock = threading.Lock()
        tx = tx_object()
        try:
            passer = pass_object()
        except BaseException:
            tx.close()
            raise
        self._injectors: list[LoadedObject] = [tx, passer]
        self._tx = tx.programs["etran_tx"]
        self._pass = passer.programs["etran_pass"]
        self._live = LiveInjector(interface, queue)

    def run(self) -> int:
        """One round: run until XDP_DROP/XDP_ABORTED or ``max_frames`` frames; returns how
        many frames the round emitted. Thread-safe (rounds do not overlap)."""
        live = self._live
        with self._lock, live.entered():
            self.rounds += 1
            emitted = 0
            while emitted < self.max_frames:
                result = self.program.test_run(self.template, ctx=live.ctx)
                if result.retval == XDP_TX:
                    live.run(self._tx, result.data)
                    self.sent += 1
                elif result.retval == XDP_PASS:
                    live.run(self._pass, result.data)
                    self.passed += 1
                elif result.retval in (XDP_DROP, XDP_ABORTED):
                    break
                else:
                    verdict = XDP_ACTION_NAMES.get(result.retval, str(result.retval))
                    raise EtranRuntimeError(
                        f"run gen program {self.program.name!r}",
                        f"it returned {verdict}; a generated frame can only be sent (XDP_TX), "
                        "passed to the host (XDP_PASS) or end the round (XDP_DROP)")
                emitted += 1
            return emitted

    def close(self) -> None:
        self._live.close()
        for obj in self._injectors:
            obj.close()
        self._injectors = []

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
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"etran-{what.replace(' ', '-')}",
                                        daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        raise NotImplementedError

    def _asked(self) -> bool:
        asked = False
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
        if self._ring_fd >= 0:
            poller.register(self._ring_fd, select.POLLIN)
        try:
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
        self._thread.join()
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

    def _serve(self) -> None:
        self.gen.run()


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

    def __init__(self, egress: Egress, frame: bytes, *, ring: Map | None = None,
                 flag: tuple[Map, bytes] | None = None, interval: float = 0.001) -> None:
        if len(frame) < 14:
            raise EtranRuntimeError(f"start the egress pump of {egress.program.name!r}",
                                    "the frame must hold at least an Ethernet header (14)")
        self.egress = egress
        self.frame = bytes(frame)
        self.sent = 0
        super().__init__("egress pump", ring=ring, flag=flag, interval=interval)

    def _serve(self) -> None:
        self.sent += self.egress.send([self.frame])


class Endpoint:
    """An application's view of a transport on one host: send and receive frames.

    Received frames come from the AF_XDP socket ``xsk`` (which the runtime registered in the
    transport's XSKMAP); after each non-empty batch the host's ``gen`` runs. Sent frames go
    through ``egress`` when the transport has one, else straight into the socket's TX ring.
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
        frames = self._xsk.recv(max_frames, timeout)
        if frames and self._gen is not None:
            self._gen.run()
        return frames

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

"""AF_XDP sockets in copy mode, from Python: how applications exchange frames with a transport.

An :class:`XskSocket` owns a UMEM (an anonymous mmap cut into equal chunks) and four rings
mapped from the kernel: FILL (chunks the kernel may receive into), RX (received frames),
TX (frames to send) and COMPLETION (sent chunks coming back). The first half of the chunks
is for receiving, the second half for sending. The socket is bound to one queue of one
interface, in that interface's namespace, and the transport's ``@xdp`` program delivers frames
to it with ``XskMap.redirect(pkt.rx_queue, ...)`` once :meth:`XskSocket.register` has put the
socket into the transport's XSKMAP.

Who holds what: the runtime (which loaded the transport) calls ``register``; the application
only gets the socket, whose API is frames in and out: :meth:`~XskSocket.send`,
:meth:`~XskSocket.recv`, :meth:`~XskSocket.fileno` (for its own poll loop). It never sees a
map fd, so transport state stays in the kernel.

Blocking or polling: ``blocking=True`` makes ``send`` wait for room and ``recv`` wait for a
frame (both with an optional timeout); ``blocking=False`` makes them return what could be
done at once. Flow control: when the TX ring or the TX half of the UMEM is full, ``send``
reaps the COMPLETION ring, wakes the kernel to transmit, and (if blocking) polls for POLLOUT.

Copy mode only: veth has no zero-copy support (EOPNOTSUPP, kernel-probe.md section 6).
Close order matters: the ring mappings hold a reference on the socket, so they are unmapped
before the fd is closed; otherwise the queue stays bound and the next bind gets EBUSY.
"""

from __future__ import annotations

import errno
import mmap
import os
import select
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import repeat
from typing import NoReturn

from etran.runtime import netns
from etran.runtime import xsk_sys as sys_
from etran.runtime.errors import BpfError, EtranRuntimeError, NotSupported
from etran.runtime.maps import Map
from etran.runtime.netns import Interface

_DESC = struct.Struct("<QII")  # struct xdp_desc: addr, len, options
_ADDR = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_XSKMAP = 17
_BUSY_GRACE = 1.0  # seconds a just-closed socket may hold its queue
_Bytes = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class XskStatistics:
    """struct xdp_statistics: why frames were lost."""

    rx_dropped: int
    rx_invalid_descs: int
    tx_invalid_descs: int
    rx_ring_full: int
    rx_fill_ring_empty_descs: int
    tx_ring_empty_descs: int


class _Ring:
    """One mmap'd ring: cached producer/consumer indices over the shared ones."""

    def __init__(self, area: mmap.mmap, offsets: tuple[int, int, int, int], size: int,
                 desc_size: int) -> None:
        self.area = area
        self.producer_at, self.consumer_at, self.desc_at, self.flags_at = offsets
        self.size = size
        self.mask = size - 1
        self.desc_size = desc_size

    def producer(self) -> int:
        return int(_U32.unpack_from(self.area, self.producer_at)[0])

    def consumer(self) -> int:
        return int(_U32.unpack_from(self.area, self.consumer_at)[0])

    def set_producer(self, value: int) -> None:
        _U32.pack_into(self.area, self.producer_at, value & 0xFFFFFFFF)

    def set_consumer(self, value: int) -> None:
        _U32.pack_into(self.area, self.consumer_at, value & 0xFFFFFFFF)

    def slot(self, index: int) -> int:
        return self.desc_at + (index & self.mask) * self.desc_size


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


class XskSocket:
    """An AF_XDP socket bound to ``queue`` of ``interface`` (copy mode).

    Not thread-safe: the rings have one producer and one consumer each, so use a socket from
    one thread at a time (or one sender thread and one receiver thread, never two of either).
    """

    def __init__(self, interface: Interface, queue: int = 0, *, frame_count: int = 4096,
                 frame_size: int = 2048, ring_size: int = 2048, blocking: bool = True) -> None:
        self.interface = interface
        self.queue = queue
        self.frame_size = frame_size
        self.blocking = blocking
        self._action = f"open an AF_XDP socket on {interface} queue {queue}"
        if not (_power_of_two(frame_size) and 2048 <= frame_size <= mmap.PAGESIZE):
            raise EtranRuntimeError(self._action, "frame_size must be a power of two between "
                                    f"2048 and {mmap.PAGESIZE}")
        if not (_power_of_two(ring_size) and _power_of_two(frame_count)
                and frame_count >= 2 * ring_size):
            raise EtranRuntimeError(self._action, "ring_size and frame_count must be powers "
                                    "of two with frame_count >= 2 * ring_size")
        self._fd = -1
        self._areas: list[mmap.mmap] = []
        self.umem = mmap.mmap(-1, frame_count * frame_size,
                              mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        try:
            self._open(frame_count, ring_size)
        except BaseException:
            self.close()
            raise

    def _open(self, frame_count: int, ring_size: int) -> None:
        with self.interface.entered():
            try:
                self._fd = sys_.open_socket()
            except OSError as exc:
                if exc.errno == errno.EAFNOSUPPORT:
                    raise NotSupported("AF_XDP sockets", "this kernel is built without "
                                       "CONFIG_XDP_SOCKETS", self._action) from exc
                raise _error(self._action, exc) from exc
        fd = self._fd
        try:
            sys_.register_umem(fd, self.umem, self.frame_size)
            for option in (sys_.XDP_UMEM_FILL_RING, sys_.XDP_UMEM_COMPLETION_RING,
                           sys_.XDP_RX_RING, sys_.XDP_TX_RING):
                sys_.set_ring_size(fd, option, ring_size)
            offsets = sys_.mmap_offsets(fd)
        except OSError as exc:
            raise _error(self._action, exc) from exc
        self.rx = self._map("rx", offsets, ring_size, 16, sys_.XDP_PGOFF_RX_RING)
        self.tx = self._map("tx", offsets, ring_size, 16, sys_.XDP_PGOFF_TX_RING)
        self.fill = self._map("fill", offsets, ring_size, 8, sys_.XDP_UMEM_PGOFF_FILL_RING)
        self.completion = self._map("completion", offsets, ring_size, 8,
                                    sys_.XDP_UMEM_PGOFF_COMPLETION_RING)
        # first half of the chunks: receive (ring_size of them are ever in use); second: send
        half = frame_count // 2
        for i in range(ring_size):
            _ADDR.pack_into(self.fill.area, self.fill.slot(i), i * self.frame_size)
        self.fill.set_producer(ring_size)
        self._fill_producer = ring_size
        self._free_tx = [i * self.frame_size for i in range(frame_count - 1, half - 1, -1)]
        self._rx_consumer = 0
        self._tx_producer = 0
        self._completion_consumer = 0
        self._bind()

    def _map(self, name: str, offsets: dict[str, tuple[int, int, int, int]], entries: int,
             desc_size: int, page_offset: int) -> _Ring:
        ring_offsets = offsets[name]
        try:
            area = mmap.mmap(self._fd, ring_offsets[2] + entries * desc_size, mmap.MAP_SHARED,
                             mmap.PROT_READ | mmap.PROT_WRITE, offset=page_offset)
        except OSError as exc:
            raise _error(f"{self._action}: map the {name} ring", exc) from exc
        self._areas.append(area)
        return _Ring(area, ring_offsets, entries, desc_size)

    def _bind(self) -> None:
        action = f"bind an AF_XDP socket to {self.interface} queue {self.queue}"
        # A socket closed a moment ago releases its queue from a kernel work item
        # (xp_put_pool -> xp_release_deferred), so EBUSY right after a close is retried.
        deadline = time.monotonic() + _BUSY_GRACE
        while True:
            try:
                sys_.bind(self._fd, self.interface.ifindex, self.queue, sys_.XDP_COPY)
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                    self._bind_failed(action, exc)
                time.sleep(0.002)

    def _bind_failed(self, action: str, exc: OSError) -> NoReturn:
        err = exc.errno or 0
        if err == errno.EINVAL:
            queues = _rx_queue_count(self.interface)
            raise EtranRuntimeError(action, f"queue {self.queue} does not exist (the "
                                    f"interface has {queues} queue"
                                    f"{'s' if queues != 1 else ''}; use 0..{queues - 1})"
                                    if queues and self.queue >= queues else
                                    "the kernel rejected the bind (EINVAL): check the "
                                    "queue, and that the interface is up") from exc
        if err == errno.EBUSY:
            raise EtranRuntimeError(action, "another AF_XDP socket is bound to that queue "
                                    "(or one was closed without unmapping its rings); "
                                    "close it first") from exc
        if err in (errno.ENODEV, errno.ENXIO):
            raise EtranRuntimeError(action, "no such interface in the socket's namespace "
                                    "(was the topology torn down?)") from exc
        raise _error(action, exc) from exc

    # ---- the transport side

    def register(self, xsks: Map, key: int | None = None) -> None:
        """Put this socket into XSKMAP ``xsks`` at ``key`` (default: its queue), from inside
        the interface's namespace; the kernel drops the entry when the socket closes."""
        action = f"register the AF_XDP socket in map {xsks.name!r}"
        if xsks.map_type != _XSKMAP:
            raise EtranRuntimeError(action, f"it is a {xsks.type_name} map, not an XskMap")
        slot = self.queue if key is None else key
        with self.interface.entered():
            xsks.update(slot.to_bytes(4, "little"), self.fileno().to_bytes(4, "little"))

    # ---- the application side

    def fileno(self) -> int:
        if self._fd < 0:
            raise EtranRuntimeError(f"use the AF_XDP socket on {self.interface}", "it is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def _timeout(self, timeout: float | None, default_blocking: float | None) -> float | None:
        if timeout is not None:
            return timeout
        return default_blocking if self.blocking else 0.0

    def recv(self, max_frames: int = 64, timeout: float | None = None) -> list[bytes]:
        """Up to ``max_frames`` received frames, oldest first.

        ``timeout``: seconds to wait for the first frame; None means the socket's default
        (forever if blocking, not at all if not); 0 never waits.
        """
        wait = self._timeout(timeout, None)
        frames = self._take(max_frames)
        if frames or wait == 0:
            return frames
        deadline = None if wait is None else time.monotonic() + wait
        while not frames:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            self._poll(select.POLLIN, remaining)
            frames = self._take(max_frames)
        return frames

    def waiting(self) -> int:
        """Frames on the receive ring not taken yet (read off the ring: no system call)."""
        return (self.rx.producer() - self._rx_consumer) & 0xFFFFFFFF

    def _take(self, max_frames: int) -> list[bytes]:
        rx = self.rx
        count = min(self.waiting(), max_frames)
        frames = []
        umem = self.umem
        returned = []
        for i in range(count):
            addr, length, _options = _DESC.unpack_from(rx.area, rx.slot(self._rx_consumer + i))
            frames.append(umem[addr:addr + length])
            returned.append(addr - addr % self.frame_size)
        if count:
            self._rx_consumer = (self._rx_consumer + count) & 0xFFFFFFFF
            rx.set_consumer(self._rx_consumer)
            self._refill(returned)
        return frames

    def _refill(self, chunks: list[int]) -> None:
        fill = self.fill
        for chunk in chunks:
            _ADDR.pack_into(fill.area, fill.slot(self._fill_producer), chunk)
            self._fill_producer = (self._fill_producer + 1) & 0xFFFFFFFF
        fill.set_producer(self._fill_producer)

    def send(self, frames: Iterable[bytes], timeout: float | None = None) -> int:
        """Queue ``frames`` for transmission and wake the kernel; returns how many were
        accepted. With room short, a blocking socket waits up to ``timeout`` seconds (None:
        forever); a non-blocking one (or ``timeout=0``) returns early with a smaller count."""
        return self.send_parts(zip(frames, repeat(b"")), timeout)

    def send_parts(self, frames: Iterable[tuple[_Bytes, _Bytes]],
                   timeout: float | None = None) -> int:
        """`send` for frames given as (head, body) pairs, each written into its chunk of the
        UMEM where it belongs: a sender whose frames share headers but not payloads (a TCP
        segment: its connection's headers, then a slice of the send buffer) joins nothing
        in Python, and each payload byte is copied once."""
        deadline: float | None = None
        timed = False                      # the deadline is set when the rings first are full
        tx = self.tx
        umem, area, mask, desc_at, step = self.umem, tx.area, tx.mask, tx.desc_at, tx.desc_size
        free, pack, limit = self._free_tx, _DESC.pack_into, self.frame_size
        producer = self._tx_producer
        room = sent = pending = 0
        for head, body in frames:
            at = len(head)
            size = at + len(body)
            if size > limit:
                raise EtranRuntimeError(f"send a frame on {self.interface}", f"it is "
                                        f"{size} bytes; the limit is {limit}")
            while room == 0:     # room is counted once, not looked up for every frame
                room = self._tx_room()
                if room:
                    break
                if pending:
                    tx.set_producer(producer)
                    pending = 0
                self._make_room()
                room = self._tx_room()
                if room:
                    break
                if not timed:
                    timed = True
                    wait = self._timeout(timeout, None)
                    deadline = None if wait is None else time.monotonic() + wait
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return sent
                self._poll(select.POLLOUT, min(remaining, 0.01) if remaining is not None
                           else 0.01)
            addr = free.pop()
            umem[addr:addr + at] = head
            if size != at:
                umem[addr + at:addr + size] = body
            pack(area, desc_at + (producer & mask) * step, addr, size, 0)
            producer = self._tx_producer = (producer + 1) & 0xFFFFFFFF
            room -= 1
            pending += 1
            sent += 1
            if pending >= 32:
                tx.set_producer(producer)
                pending = 0
                self._kick()
        if pending:
            tx.set_producer(producer)
            self._kick()
        return sent

    def _tx_room(self) -> int:
        """Frames that can be queued now: free TX chunks, and free slots on the TX ring."""
        used = (self._tx_producer - self.tx.consumer()) & 0xFFFFFFFF
        return min(len(self._free_tx), self.tx.size - used)

    def _make_room(self) -> None:
        self._reap()
        if not self._free_tx or self.tx.consumer() != self._tx_producer:
            self._kick()
            self._reap()

    def _kick(self) -> None:
        """Let the kernel transmit what the TX ring holds; copy mode does a batch per call."""
        for _ in range(64):
            try:
                err = sys_.wake_tx(self._fd)
            except OSError as exc:
                raise _error(f"transmit on {self.interface}", exc) from exc
            if err != errno.EAGAIN or self.tx.consumer() == self._tx_producer:
                return

    def _reap(self) -> int:
        """Take sent chunks back from the COMPLETION ring."""
        cq = self.completion
        available = (cq.producer() - self._completion_consumer) & 0xFFFFFFFF
        for i in range(available):
            (addr,) = _ADDR.unpack_from(cq.area, cq.slot(self._completion_consumer + i))
            self._free_tx.append(addr - addr % self.frame_size)
        if available:
            self._completion_consumer = (self._completion_consumer + available) & 0xFFFFFFFF
            cq.set_consumer(self._completion_consumer)
        return available

    def flush(self, timeout: float = 1.0) -> bool:
        """Wait until every queued frame has left (its chunk completed); False on timeout."""
        deadline = time.monotonic() + timeout
        tx_chunks = len(self.umem) // self.frame_size // 2
        while True:
            self._kick()
            self._reap()
            if len(self._free_tx) == tx_chunks:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.0005)

    def _poll(self, events: int, timeout: float | None) -> None:
        poller = select.poll()
        poller.register(self._fd, events)
        poller.poll(None if timeout is None else max(0, int(timeout * 1000 + 0.999)))

    def statistics(self) -> XskStatistics:
        try:
            raw = sys_.get_option(self.fileno(), sys_.XDP_STATISTICS, 48)
        except OSError as exc:
            raise _error(f"read AF_XDP statistics on {self.interface}", exc) from exc
        return XskStatistics(*struct.unpack("<6Q", raw.ljust(48, b"\0")))

    # ---- lifetime

    def close(self) -> None:
        """Unmap the rings, close the socket, then free the UMEM (idempotent)."""
        for area in self._areas:
            area.close()
        self._areas.clear()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if not self.umem.closed:
            self.umem.close()

    def __enter__(self) -> XskSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        return f"XskSocket({self.interface}, queue={self.queue}, {state})"


def _rx_queue_count(interface: Interface) -> int:
    try:
        with netns.netlink(interface.netns) as ipr:
            link = ipr.link("get", index=interface.ifindex)[0]
            return int(link.get_attr("IFLA_NUM_RX_QUEUES") or 0)
    except Exception:  # best effort: only used to word an error message
        return 0


def _error(action: str, exc: OSError) -> EtranRuntimeError:
    err = exc.errno or 0
    if err == errno.EOPNOTSUPP:
        return NotSupported("AF_XDP on this interface", "the driver refused the mode; etran "
                            "uses copy mode, which every driver should accept", action)
    if err in (errno.EPERM, errno.EACCES):
        return NotSupported("CAP_NET_RAW/root", "AF_XDP sockets need it; run as root", action)
    return BpfError(action, err, [str(exc)])

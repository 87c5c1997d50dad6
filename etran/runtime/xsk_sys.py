"""The one module that calls libc for AF_XDP sockets (socket, options, bind, wake-ups).

Python's ``socket`` module knows no AF_XDP addresses and Python 3.11 has no raw
``setsockopt`` with arbitrary buffers for an unknown family, so these few calls go through
ctypes. As in :mod:`etran.runtime.libbpf`, every function takes and returns Python values and
turns a failure into ``OSError(errno, "<libc function>: ...")``; :mod:`etran.runtime.afxdp`
turns those into errors with advice. Rings and UMEM are ordinary ``mmap`` objects.

Layouts (``include/uapi/linux/if_xdp.h``)::

    struct sockaddr_xdp   { u16 family; u16 flags; u32 ifindex; u32 queue_id; u32 shared_umem_fd; }
    struct xdp_umem_reg   { u64 addr; u64 len; u32 chunk_size; u32 headroom; u32 flags;
                            u32 tx_metadata_len; }
    struct xdp_ring_offset { u64 producer, consumer, desc, flags; }  x4: rx, tx, fill, completion
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
import threading
from ctypes import POINTER, c_int, c_size_t, c_ssize_t, c_uint32, c_void_p

AF_XDP = 44
SOL_XDP = 283
SOCK_RAW = 3
SOCK_CLOEXEC = 0o2000000
MSG_DONTWAIT = 0x40

# socket options (level SOL_XDP)
XDP_MMAP_OFFSETS = 1
XDP_RX_RING = 2
XDP_TX_RING = 3
XDP_UMEM_REG = 4
XDP_UMEM_FILL_RING = 5
XDP_UMEM_COMPLETION_RING = 6
XDP_STATISTICS = 7
XDP_OPTIONS = 8

# mmap page offsets of the rings
XDP_PGOFF_RX_RING = 0
XDP_PGOFF_TX_RING = 0x80000000
XDP_UMEM_PGOFF_FILL_RING = 0x100000000
XDP_UMEM_PGOFF_COMPLETION_RING = 0x180000000

# bind flags
XDP_SHARED_UMEM = 1
XDP_COPY = 2
XDP_ZEROCOPY = 4
XDP_USE_NEED_WAKEUP = 8

XDP_RING_NEED_WAKEUP = 1
XDP_PACKET_HEADROOM = 256  # where the kernel puts a received frame inside its chunk

_lock = threading.Lock()
_libc: ctypes.CDLL | None = None


def _load() -> ctypes.CDLL:
    global _libc
    if _libc is not None:        # every send asks: no lock once loaded
        return _libc
    with _lock:
        if _libc is None:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.socket.restype, libc.socket.argtypes = c_int, [c_int, c_int, c_int]
            libc.setsockopt.restype = c_int
            libc.setsockopt.argtypes = [c_int, c_int, c_int, c_void_p, c_uint32]
            libc.getsockopt.restype = c_int
            libc.getsockopt.argtypes = [c_int, c_int, c_int, c_void_p, POINTER(c_uint32)]
            libc.bind.restype, libc.bind.argtypes = c_int, [c_int, c_void_p, c_uint32]
            libc.sendto.restype = c_ssize_t
            libc.sendto.argtypes = [c_int, c_void_p, c_size_t, c_int, c_void_p, c_uint32]
            libc.recvfrom.restype = c_ssize_t
            libc.recvfrom.argtypes = [c_int, c_void_p, c_size_t, c_int, c_void_p, c_void_p]
            _libc = libc
        return _libc


def _fail(function: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{function}: {os.strerror(err)}")


def open_socket() -> int:
    """socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0); in the calling thread's namespace."""
    fd = _load().socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0)
    if fd < 0:
        raise _fail("socket(AF_XDP)")
    return int(fd)


def set_option(fd: int, option: int, value: bytes) -> None:
    buf = ctypes.create_string_buffer(value, len(value))
    if _load().setsockopt(fd, SOL_XDP, option, buf, len(value)) != 0:
        raise _fail(f"setsockopt(SOL_XDP, {option})")


def get_option(fd: int, option: int, size: int) -> bytes:
    buf = ctypes.create_string_buffer(size)
    length = c_uint32(size)
    if _load().getsockopt(fd, SOL_XDP, option, buf, ctypes.byref(length)) != 0:
        raise _fail(f"getsockopt(SOL_XDP, {option})")
    return buf.raw[:length.value]


def register_umem(fd: int, area: mmap.mmap, chunk_size: int, headroom: int = 0) -> None:
    """XDP_UMEM_REG: the kernel pins ``area`` and cuts it into ``chunk_size`` frames."""
    set_option(fd, XDP_UMEM_REG, struct.pack("<QQIIII", address_of(area), len(area),
                                             chunk_size, headroom, 0, 0))


def set_ring_size(fd: int, option: int, entries: int) -> None:
    set_option(fd, option, struct.pack("<I", entries))


def mmap_offsets(fd: int) -> dict[str, tuple[int, int, int, int]]:
    """{"rx"|"tx"|"fill"|"completion": (producer, consumer, desc, flags) byte offsets}."""
    raw = get_option(fd, XDP_MMAP_OFFSETS, 128)
    if len(raw) < 128:
        raise OSError(0, "getsockopt(XDP_MMAP_OFFSETS): the kernel predates ring flags (5.4+)")
    values = struct.unpack("<16Q", raw)
    return {name: (values[4 * i], values[4 * i + 1], values[4 * i + 2], values[4 * i + 3])
            for i, name in enumerate(("rx", "tx", "fill", "completion"))}


def bind(fd: int, ifindex: int, queue: int, flags: int, shared_umem_fd: int = 0) -> None:
    address = ctypes.create_string_buffer(
        struct.pack("<HHIII", AF_XDP, flags, ifindex, queue, shared_umem_fd), 16)
    if _load().bind(fd, address, 16) != 0:
        raise _fail("bind(AF_XDP)")


def wake_tx(fd: int) -> int:
    """sendto(fd, NULL, 0, MSG_DONTWAIT): make the kernel transmit what the TX ring holds
    (copy mode transmits in this call, a batch at a time). Returns 0, or the errno of a
    transient condition (EAGAIN: more left; EBUSY/ENOBUFS: the device is busy) for the caller
    to retry; raises for anything else."""
    if _load().sendto(fd, None, 0, MSG_DONTWAIT, None, 0) >= 0:
        return 0
    err = ctypes.get_errno()
    if err in (11, 16, 105):  # EAGAIN, EBUSY, ENOBUFS
        return err
    raise OSError(err, f"sendto(AF_XDP): {os.strerror(err)}")


def wake_rx(fd: int) -> None:
    """recvfrom(fd, NULL, 0, MSG_DONTWAIT): ask the kernel to refill RX (need_wakeup mode)."""
    if _load().recvfrom(fd, None, 0, MSG_DONTWAIT, None, None) < 0:
        err = ctypes.get_errno()
        if err not in (11, 16, 105):
            raise OSError(err, f"recvfrom(AF_XDP): {os.strerror(err)}")


def address_of(area: mmap.mmap) -> int:
    """The address of an mmap'd area (the export is released at once, so the mmap can still
    be closed later)."""
    view = ctypes.c_char.from_buffer(area)
    try:
        return ctypes.addressof(view)
    finally:
        del view

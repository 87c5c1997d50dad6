"""Live BPF maps and ring-buffer readers, operated on raw bytes from Python.

A :class:`Map` wraps a map file descriptor. Maps that come from a loaded object borrow the
object's fd (the :class:`~etran.runtime.loader.LoadedObject` closes it); maps opened from a
pin own theirs (``close()`` it, or use ``with``). Typed views over the raw bytes belong to
higher layers, which know the struct layouts; this layer only checks sizes, because the kernel
reads exactly ``key_size``/``value_size`` bytes from whatever buffer it is handed.
"""

from __future__ import annotations

import os
import struct
import weakref
from collections.abc import Iterator
from types import TracebackType

from etran.abi import (
    ARRAY_LIKE_MAP_TYPES,
    BPF_ANY,
    HASH_LIKE_MAP_TYPES,
    MAP_TYPE_NAMES,
    PERCPU_MAP_TYPES,
    QUEUE_LIKE_MAP_TYPES,
    RINGBUF_MAP_TYPE,
    SLOT_MAP_TYPES,
)
from etran.runtime import libbpf as lb
from etran.runtime.errors import BpfError, EtranRuntimeError
from etran.runtime.system import doing, pin, possible_cpus


def _round8(n: int) -> int:
    return (n + 7) & ~7


class Map:
    """One BPF map: its metadata and element operations on raw bytes."""

    def __init__(self, name: str, fd: int, map_type: int, key_size: int, value_size: int,
                 max_entries: int, flags: int = 0, *, owns_fd: bool = False) -> None:
        self.name = name
        self._fd = fd
        self.map_type = map_type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.flags = flags
        self._finalizer = weakref.finalize(self, os.close, fd) if owns_fd else None

    @classmethod
    def from_fd(cls, fd: int, *, owns_fd: bool = True) -> Map:
        """Describe the map behind ``fd`` (``struct bpf_map_info``) and wrap it."""
        with doing(f"describe map fd {fd}"):
            info = lb.obj_get_info(fd)
        map_type, _id, key_size, value_size, max_entries, flags = struct.unpack_from("6I", info)
        name = info[24:40].split(b"\0", 1)[0].decode(errors="replace")
        return cls(name, fd, map_type, key_size, value_size, max_entries, flags,
                   owns_fd=owns_fd)

    @classmethod
    def from_pinned(cls, path: str) -> Map:
        """Open a map pinned at ``path``; the returned map owns its fd."""
        with doing(f"open pinned map {path}"):
            fd = lb.obj_get(path)
        try:
            return cls.from_fd(fd, owns_fd=True)
        except BaseException:
            os.close(fd)
            raise

    # ---- lifetime

    @property
    def fd(self) -> int:
        if self._fd < 0:
            raise EtranRuntimeError(f"use map {self.name!r}", "it is closed (its object was "
                                    "closed, or close() was called)")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        """Close the fd if this map owns it; a borrowed map just becomes unusable."""
        if self._finalizer is not None:
            self._finalizer()
        self._fd = -1

    def _detach(self) -> None:
        """Called by the owning object when it closes the fd itself."""
        self._fd = -1

    def __enter__(self) -> Map:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Map({self.name!r}, {self.type_name}, key={self.key_size}, "
                f"value={self.value_size}, max_entries={self.max_entries}, fd={self._fd})")

    # ---- description

    @property
    def type_name(self) -> str:
        return MAP_TYPE_NAMES.get(self.map_type, f"type{self.map_type}")

    @property
    def is_percpu(self) -> bool:
        return self.map_type in PERCPU_MAP_TYPES

    @property
    def lookup_size(self) -> int:
        """Bytes a lookup returns: ``ncpu * roundup(value_size, 8)`` for per-CPU maps."""
        if self.is_percpu:
            return possible_cpus() * _round8(self.value_size)
        return self.value_size

    def _key(self, action: str, key: bytes | None) -> bytes | None:
        if self.map_type in QUEUE_LIKE_MAP_TYPES:
            if key not in (None, b""):
                raise EtranRuntimeError(action, f"{self.type_name} maps take no key")
            return None
        if key is None or len(key) != self.key_size:
            got = "no key" if key is None else f"a {len(key)}-byte key"
            raise EtranRuntimeError(action, f"got {got}; map {self.name!r} has "
                                    f"{self.key_size}-byte keys")
        return bytes(key)

    def _value(self, action: str, value: bytes) -> bytes:
        if len(value) == self.lookup_size:
            return bytes(value)
        if self.is_percpu and len(value) == self.value_size:
            # one value for every CPU, each slot padded to 8 bytes
            return (bytes(value).ljust(_round8(self.value_size), b"\0")) * possible_cpus()
        expected = (f"{self.value_size} or {self.lookup_size}" if self.is_percpu
                    else str(self.value_size))
        raise EtranRuntimeError(action, f"got a {len(value)}-byte value; map {self.name!r} "
                                f"takes {expected} bytes")

    # ---- elements

    def lookup(self, key: bytes | None, flags: int = 0) -> bytes | None:
        """The value at ``key`` or None; per-CPU maps return every CPU's slot concatenated.
        ``flags=BPF_F_LOCK`` copies a value holding a spin lock out under that lock."""
        # Hot path of every test run: no context manager, and the message is built on failure.
        raw_key = self._key("look up an element", key)
        try:
            return lb.map_lookup(self.fd, raw_key, self.lookup_size, flags)
        except OSError as exc:
            raise BpfError(f"look up an element of map {self.name!r}", exc.errno or 0) from exc

    def lookup_percpu(self, key: bytes) -> list[bytes] | None:
        """One ``value_size`` value per possible CPU, or None when ``key`` is absent."""
        if not self.is_percpu:
            raise EtranRuntimeError(f"look up per-CPU values of map {self.name!r}",
                                    f"it is a {self.type_name} map, not a per-CPU one")
        raw = self.lookup(key)
        if raw is None:
            return None
        step = _round8(self.value_size)
        return [raw[i:i + self.value_size] for i in range(0, len(raw), step)]

    def update(self, key: bytes | None, value: bytes, flags: int = BPF_ANY) -> None:
        """Set ``key`` to ``value``; a per-CPU map also accepts one value for every CPU."""
        raw_key = self._key("update an element", key)
        raw_value = self._value(f"update an element of map {self.name!r}", value)
        try:
            lb.map_update(self.fd, raw_key, raw_value, flags)
        except OSError as exc:
            raise BpfError(f"update an element of map {self.name!r}", exc.errno or 0) from exc

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; False when it was absent."""
        action = f"delete an element of map {self.name!r}"
        raw_key = self._key(action, key)
        assert raw_key is not None
        with doing(action):
            return lb.map_delete(self.fd, raw_key)

    def keys(self) -> Iterator[bytes]:
        """Every key, in the kernel's iteration order (BPF_MAP_GET_NEXT_KEY)."""
        key: bytes | None = None
        while True:
            try:
                key = lb.map_next_key(self.fd, key, self.key_size)
            except OSError as exc:
                raise BpfError(f"iterate the keys of map {self.name!r}", exc.errno or 0) from exc
            if key is None:
                return
            yield key

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs; keys deleted during iteration are skipped."""
        for key in self.keys():
            value = self.lookup(key)
            if value is not None:
                yield key, value

    def __len__(self) -> int:
        return sum(1 for _ in self.keys())

    def clear(self) -> None:
        """Remove every element (hash-like), pop every value (queue/stack), zero every value
        (array: the kernel cannot delete array elements), or empty every slot (devmap, cpumap,
        xskmap: their values are devices, CPUs and sockets the kernel resolves, so a slot
        cannot be "zeroed", only emptied)."""
        if self.map_type in HASH_LIKE_MAP_TYPES:
            for key in list(self.keys()):
                self.delete(key)
        elif self.map_type in QUEUE_LIKE_MAP_TYPES:
            while self.pop() is not None:
                pass
        elif self.map_type in ARRAY_LIKE_MAP_TYPES:
            zero = bytes(self.lookup_size)
            for index in range(self.max_entries):
                self.update(index.to_bytes(self.key_size, "little"), zero)
        elif self.map_type in SLOT_MAP_TYPES:
            for index in range(self.max_entries):  # deleting an empty slot succeeds
                self.delete(index.to_bytes(self.key_size, "little"))
        else:
            raise EtranRuntimeError(f"clear map {self.name!r}",
                                    f"not supported for {self.type_name} maps")

    # ---- queue and stack maps

    def push(self, value: bytes, flags: int = BPF_ANY) -> None:
        """Append to a QUEUE/STACK map; ``flags=BPF_EXIST`` overwrites the oldest when full."""
        self._require_queue("push onto")
        self.update(None, value, flags)  # queue maps take no key

    def pop(self) -> bytes | None:
        """Remove and return the next value of a QUEUE/STACK map, or None when empty."""
        self._require_queue("pop from")
        with doing(f"pop from map {self.name!r}"):
            return lb.map_lookup_and_delete(self.fd, None, self.value_size)

    def peek(self) -> bytes | None:
        """The next value of a QUEUE/STACK map without removing it, or None when empty."""
        self._require_queue("peek at")
        return self.lookup(None)

    def _require_queue(self, verb: str) -> None:
        if self.map_type not in QUEUE_LIKE_MAP_TYPES:
            raise EtranRuntimeError(f"{verb} map {self.name!r}",
                                    f"it is a {self.type_name} map, not a queue or stack")

    def pin(self, path: str) -> None:
        """Pin the map at ``path`` on a bpffs (see :func:`ensure_bpffs`)."""
        pin(self.fd, path)


class RingBufferReader:
    """Drains a BPF_MAP_TYPE_RINGBUF map from Python, oldest record first.

    Uses libbpf's consumer (it skips discarded records and stops at ones still being written)
    and owns the mappings and epoll fd libbpf creates: ``close()`` it, or use ``with``.
    """

    def __init__(self, map_: Map) -> None:
        if map_.map_type != RINGBUF_MAP_TYPE:
            raise EtranRuntimeError(f"read ring buffer {map_.name!r}",
                                    f"it is a {map_.type_name} map, not a ringbuf")
        self.map = map_
        self._ring: lb.RingBuffer | None = None
        with doing(f"open ring buffer {map_.name!r}"):
            self._ring = lb.RingBuffer(map_.fd)

    def drain(self) -> list[bytes]:
        """Every record committed since the last drain, in order."""
        if self._ring is None:
            raise EtranRuntimeError(f"read ring buffer {self.map.name!r}", "the reader is closed")
        with doing(f"read ring buffer {self.map.name!r}"):
            return self._ring.consume()

    def close(self) -> None:
        if self._ring is not None:
            self._ring.free()
            self._ring = None

    def __enter__(self) -> RingBufferReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

"""Typed access to a loaded transport's maps, through the DSL's own struct declarations.

A :class:`TypedMap` pairs a live :class:`~etran.runtime.maps.Map` with the map's declaration
in the checked program (``tir.Program.maps``: kind, key type, value type) and speaks Python
values instead of bytes, with :mod:`etran.ir.codec`'s conventions: a struct is a dict of field
name to value, an array a list, an integer key an int. Reading gives every field but the
kernel's own (``SpinLock``, ``Timer``); writing takes any subset of fields (the rest are
zero). With ``pretty=True`` a ``be32`` reads as a dotted IPv4 address and a ``u8[6]`` as a
MAC address; both forms are accepted when writing either way.

    typed = typed_maps(loaded, compiled.program)       # every map of the object
    typed["flows"].set({"peer": "10.111.0.2", "flow": 1}, {"snd_una": 0})
    for key, value in typed["flows"].items(): ...

What each kind of map allows is what the kernel allows from user space:

* hash maps: ``get``, ``set``, ``insert`` (only if absent), ``replace`` (only if present),
  ``delete``, ``keys``/``values``/``items``, ``len``, ``clear``;
* arrays: the same but ``insert`` and ``delete`` (array elements always exist; ``set`` one to
  ``{}`` to zero it); iterating gives every slot;
* per-CPU maps: ``get`` returns one value per possible CPU; ``set`` takes one value (written to
  every CPU) or a list with one per CPU;
* queues: ``push``, ``pop``, ``peek``; ring buffers: ``drain`` (the records written since the
  last drain, decoded); DevMap values are interface indexes; an XskMap's sockets cannot be
  read back (the kernel refuses), only its slots listed.

A value that holds a ``SpinLock`` is read and written with BPF_F_LOCK: the kernel copies it
under the lock, so neither side sees half an update, and a write goes in place, so a
``Timer`` in the same value keeps running. A hash-map value with a ``Timer`` but no lock is
replaced as a new element on update, which cancels its timer (the kernel's rule for hash maps).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from etran.abi import ARRAY_LIKE_MAP_TYPES, BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, RINGBUF_MAP_TYPE
from etran.ir import codec, tir
from etran.ir.types import U32, ArrayType, MapType, SpinLockType, StructType
from etran.runtime.errors import BpfError, EtranRuntimeError
from etran.runtime.loader import LoadedObject
from etran.runtime.maps import Map, RingBufferReader
from etran.runtime.system import possible_cpus


def _has(t: Any, kinds: tuple[type, ...]) -> bool:
    """Whether storage type ``t`` holds one of ``kinds`` anywhere inside."""
    if isinstance(t, kinds):
        return True
    if isinstance(t, StructType):
        return any(_has(f.type, kinds) for f in t.fields)
    if isinstance(t, ArrayType):
        return _has(t.elem, kinds)
    return False


class TypedMap:
    """One live map, read and written as Python values of its declared types."""

    def __init__(self, map_: Map, declaration: MapType, *, pretty: bool = False) -> None:
        self.map = map_
        self.declaration = declaration
        self.pretty = pretty
        self.name = declaration.name
        self.kind = declaration.kind
        self.key_type = declaration.key
        # XskMap and DevMap hold a socket or an ifindex: a u32 for user space
        self.value_type = declaration.value if declaration.value is not None else U32
        self._reader: RingBufferReader | None = None
        # a ring buffer's kernel map has no key or value size; its records are the values
        expected = ((declaration.key_size, declaration.value_size)
                    if map_.map_type != RINGBUF_MAP_TYPE else (0, 0))
        if (map_.key_size, map_.value_size) != expected or \
                map_.map_type != declaration.kernel_type:
            raise EtranRuntimeError(
                f"view map {map_.name!r} as {declaration}",
                f"the kernel's map ({map_.type_name}, {map_.key_size}-byte keys, "
                f"{map_.value_size}-byte values) is not the declared one "
                f"({declaration.type_name}, {expected[0]}-byte keys, {expected[1]}-byte "
                "values); was the source changed since it was loaded?")
        self._locked = _has(self.value_type, (SpinLockType,))

    def __repr__(self) -> str:
        return f"TypedMap({self.name!r}, {self.declaration.kind}, {self.map!r})"

    # ---- conversions

    @property
    def _slot(self) -> int:
        """Bytes per CPU in a per-CPU value: the kernel rounds each up to 8."""
        return (self.map.value_size + 7) & ~7

    def encode_key(self, key: Any) -> bytes:
        if self.key_type is None:
            raise EtranRuntimeError(f"use map {self.name!r}", f"a {self.kind} has no keys")
        return self._encode(self.key_type, key, "key")

    def decode_key(self, raw: bytes) -> Any:
        assert self.key_type is not None
        return codec.decode(self.key_type, raw, self.pretty)

    def encode_value(self, value: Any) -> bytes:
        return self._encode(self.value_type, value, "value")

    def _encode(self, t: Any, value: Any, what: str) -> bytes:
        try:
            return codec.encode(t, value, f"{self.name} {what}")
        except codec.CodecError as exc:
            raise EtranRuntimeError(f"write map {self.name!r}", str(exc)) from None

    def decode_value(self, raw: bytes) -> Any:
        """A value as returned by the kernel: one per CPU for per-CPU maps."""
        if self.map.is_percpu:
            return [codec.decode(self.value_type, raw[i:i + self.map.value_size], self.pretty)
                    for i in range(0, len(raw), self._slot)]
        return codec.decode(self.value_type, raw, self.pretty)

    def _encode_for_update(self, value: Any) -> bytes:
        if self.map.is_percpu and isinstance(value, list):
            cpus = possible_cpus()
            if len(value) != cpus:
                raise EtranRuntimeError(f"update map {self.name!r}",
                                        f"got {len(value)} per-CPU values; this machine has "
                                        f"{cpus} possible CPUs")
            return b"".join(self.encode_value(v).ljust(self._slot, b"\0") for v in value)
        return self.encode_value(value)

    # ---- elements

    def get(self, key: Any, default: Any = None) -> Any:
        """The value at ``key``, or ``default`` when there is none."""
        self._need_keys("look up")
        self._need_values("look up an element of")
        raw = self.map.lookup(self.encode_key(key), BPF_F_LOCK if self._locked else 0)
        return default if raw is None else self.decode_value(raw)

    def __getitem__(self, key: Any) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key: Any) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def set(self, key: Any, value: Any) -> None:
        """Create or overwrite the value at ``key``."""
        self._update(key, value, BPF_ANY, "set")

    def __setitem__(self, key: Any, value: Any) -> None:
        self.set(key, value)

    def insert(self, key: Any, value: Any) -> bool:
        """Create ``key`` only if it is absent; False when it was present."""
        if self.map.map_type in ARRAY_LIKE_MAP_TYPES:
            raise EtranRuntimeError(f"insert into map {self.name!r}", "array elements always "
                                    "exist; use set()")
        return self._update(key, value, BPF_NOEXIST, "insert")

    def replace(self, key: Any, value: Any) -> bool:
        """Overwrite ``key`` only if it is present; False when it was absent."""
        return self._update(key, value, BPF_EXIST, "replace")

    def _update(self, key: Any, value: Any, flags: int, verb: str) -> bool:
        self._need_keys(verb)
        raw_key, raw_value = self.encode_key(key), self._encode_for_update(value)
        if self._locked:
            flags |= BPF_F_LOCK
        try:
            self.map.update(raw_key, raw_value, flags)
        except BpfError as exc:
            if (flags & BPF_NOEXIST and exc.errno == errno.EEXIST) or \
                    (flags & BPF_EXIST and exc.errno == errno.ENOENT):
                return False  # the condition did not hold
            raise
        return True

    def delete(self, key: Any) -> bool:
        """Remove ``key``; False when it was absent."""
        if self.map.map_type in ARRAY_LIKE_MAP_TYPES:
            raise EtranRuntimeError(f"delete from map {self.name!r}", "array elements cannot "
                                    "be deleted; set the slot to {} to zero it")
        self._need_keys("delete from")
        return self.map.delete(self.encode_key(key))

    def __delitem__(self, key: Any) -> None:
        if not self.delete(key):
            raise KeyError(key)

    def keys(self) -> Iterator[Any]:
        self._need_keys("iterate")
        for raw in self.map.keys():  # noqa: SIM118 (a BPF map, not a dict)
            yield self.decode_key(raw)

    def __iter__(self) -> Iterator[Any]:
        return self.keys()

    def items(self) -> Iterator[tuple[Any, Any]]:
        """(key, value) pairs in the kernel's order; keys deleted meanwhile are skipped."""
        self._need_keys("iterate")
        self._need_values("iterate")
        for raw_key in self.map.keys():  # noqa: SIM118 (a BPF map, not a dict)
            raw_value = self.map.lookup(raw_key, BPF_F_LOCK if self._locked else 0)
            if raw_value is not None:
                yield self.decode_key(raw_key), self.decode_value(raw_value)

    def values(self) -> Iterator[Any]:
        for _key, value in self.items():
            yield value

    def __len__(self) -> int:
        self._need_keys("count")
        return len(self.map)

    def clear(self) -> None:
        """Remove every element (hash), zero every slot (array), empty every slot (DevMap,
        XskMap), or empty a queue."""
        self.map.clear()

    def _need_keys(self, verb: str) -> None:
        if self.key_type is None:
            raise EtranRuntimeError(f"{verb} map {self.name!r}",
                                    f"a {self.kind} has no keys; use "
                                    + ("push/pop/peek" if self.kind == "Queue" else "drain"))

    def _need_values(self, verb: str) -> None:
        if self.kind == "XskMap":
            raise EtranRuntimeError(f"{verb} map {self.name!r}",
                                    "AF_XDP sockets cannot be read back out of an XskMap (the "
                                    "kernel refuses); list its slots with keys()")

    # ---- queues and ring buffers

    def push(self, value: Any) -> None:
        self.map.push(self.encode_value(value))

    def pop(self) -> Any:
        """The oldest value of a queue, removed; None when it is empty."""
        raw = self.map.pop()
        return None if raw is None else self.decode_value(raw)

    def peek(self) -> Any:
        raw = self.map.peek()
        return None if raw is None else self.decode_value(raw)

    def drain(self) -> list[Any]:
        """The ring buffer's records written since the last drain, decoded, oldest first."""
        if self.map.map_type != RINGBUF_MAP_TYPE:
            raise EtranRuntimeError(f"drain map {self.name!r}", f"it is a {self.kind}, not a "
                                    "RingBuf")
        if self._reader is None:
            self._reader = RingBufferReader(self.map)
        return [codec.decode(self.value_type, raw, self.pretty)
                for raw in self._reader.drain()]

    def close(self) -> None:
        """Close the ring-buffer reader, if :meth:`drain` opened one (the map itself belongs
        to whoever opened it)."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> TypedMap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_MISSING = object()


def typed_maps(loaded: LoadedObject, program: tir.Program, *,
               pretty: bool = False) -> dict[str, TypedMap]:
    """Every declared map of ``loaded`` (compiled from ``program``), typed."""
    return {m.name: TypedMap(loaded.maps[m.name], m, pretty=pretty) for m in program.maps
            if m.name in loaded.maps}


def program_of(source: str | os.PathLike[str]) -> tir.Program:
    """The checked program of a transport's source file: its maps' declarations. Budget
    and other whole-program rules are recorded, not enforced: only the declarations
    matter here, and the budget's second opinion would compile the program."""
    from etran.pipeline import check_source
    path = Path(source)
    return check_source(path.read_text(), str(path), enforce_rules=False)


__all__ = ["TypedMap", "program_of", "typed_maps"]

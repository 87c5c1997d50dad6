"""Bytes to Python values and back, through the DSL's own struct declarations.

One layout definition serves everyone: the compiler lays structs out
(`etran.ir.types.layout`), and this module reads and writes map keys,
map values, ring-buffer records and packet headers with that layout. Python
values are plain: integers, `bool`, dicts for structs (field name -> value),
lists for arrays. For convenience when values come from JSON or a command
line, a `be32` accepts a dotted IPv4 address ("10.0.0.1"), an `Array[u8, 6]`
a MAC address ("02:00:00:00:00:01"), and a `u8` array a hex string.
"""
from __future__ import annotations

import ipaddress
import struct
from typing import Any

from etran.ir.types import ArrayType, BeType, BoolType, IntType, SpinLockType, StructType, TimerType

_FMT = {(8, False): "B", (16, False): "H", (32, False): "I", (64, False): "Q",
        (8, True): "b", (16, True): "h", (32, True): "i", (64, True): "q"}


class CodecError(ValueError):
    """A value does not fit the declared type; the message names the field."""


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            pass
    raise CodecError(f"{where}: expected an integer, got {value!r}")


def pack_into(buf: bytearray, offset: int, t: Any, value: Any, where: str = "value") -> None:
    """Write `value` of storage type `t` into `buf` at `offset`."""
    if isinstance(t, IntType):
        v = _int(value, where)
        if not t.fits(v):
            raise CodecError(f"{where}: {v} does not fit in {t} ({t.min} to {t.max})")
        struct.pack_into("<" + _FMT[(t.bits, t.signed)], buf, offset, v)
    elif isinstance(t, BeType):
        if isinstance(value, str) and t.bits == 32 and value.count(".") == 3:
            try:
                value = int(ipaddress.IPv4Address(value))
            except ValueError as e:
                raise CodecError(f"{where}: {e}") from None
        v = _int(value, where)
        if not 0 <= v < (1 << t.bits):
            raise CodecError(f"{where}: {v} does not fit in {t}")
        struct.pack_into(">" + _FMT[(t.bits, False)], buf, offset, v)
    elif isinstance(t, BoolType):
        buf[offset] = 1 if value else 0
    elif isinstance(t, (SpinLockType, TimerType)):
        buf[offset:offset + t.size] = bytes(t.size)  # the kernel owns these; they read as zero
    elif isinstance(t, StructType):
        if not isinstance(value, dict):
            raise CodecError(f"{where}: expected fields of {t.name} as a mapping, got {value!r}")
        unknown = set(value) - {f.name for f in t.fields}
        if unknown:
            raise CodecError(f"{where}: {t.name} has no field {sorted(unknown)[0]!r}; its fields "
                             f"are {', '.join(f.name for f in t.fields)}")
        buf[offset:offset + t.size] = bytes(t.size)
        for f in t.fields:
            if f.name in value:
                pack_into(buf, offset + f.offset, f.type, value[f.name], f"{where}.{f.name}")
    elif isinstance(t, ArrayType):
        items = _array_items(t, value, where)
        for i, item in enumerate(items):
            pack_into(buf, offset + i * t.elem.size, t.elem, item, f"{where}[{i}]")
    else:
        raise CodecError(f"{where}: cannot encode a {t}")


def _array_items(t: ArrayType, value: Any, where: str) -> list[Any]:
    if isinstance(value, (bytes, bytearray)):
        value = list(value)
    elif isinstance(value, str) and isinstance(t.elem, IntType) and t.elem.bits == 8:
        text = value.replace(":", "").replace("-", "")
        try:
            value = list(bytes.fromhex(text))
        except ValueError:
            raise CodecError(f"{where}: {value!r} is not hex bytes or a MAC address") from None
    if not isinstance(value, (list, tuple)):
        raise CodecError(f"{where}: expected a list for {t}")
    if len(value) > t.length:
        raise CodecError(f"{where}: {len(value)} elements do not fit in {t}")
    return list(value) + [0] * (t.length - len(value)) if not isinstance(t.elem, StructType) \
        else list(value) + [{}] * (t.length - len(value))


def encode(t: Any, value: Any, where: str = "value") -> bytes:
    buf = bytearray(t.size)
    pack_into(buf, 0, t, value, where)
    return bytes(buf)


def unpack_from(buf: bytes | bytearray, offset: int, t: Any, pretty: bool = False) -> Any:
    """Read a value of type `t`; `pretty` shows be32 as IPv4 and 6-byte u8 arrays as MACs."""
    if isinstance(t, IntType):
        return struct.unpack_from("<" + _FMT[(t.bits, t.signed)], buf, offset)[0]
    if isinstance(t, BeType):
        v = struct.unpack_from(">" + _FMT[(t.bits, False)], buf, offset)[0]
        return str(ipaddress.IPv4Address(v)) if pretty and t.bits == 32 else v
    if isinstance(t, BoolType):
        return buf[offset] != 0
    if isinstance(t, (SpinLockType, TimerType)):
        return None
    if isinstance(t, StructType):
        return {f.name: unpack_from(buf, offset + f.offset, f.type, pretty) for f in t.fields
                if not isinstance(f.type, (SpinLockType, TimerType))}
    if isinstance(t, ArrayType):
        if pretty and t.length == 6 and isinstance(t.elem, IntType) and t.elem.bits == 8:
            return ":".join(f"{b:02x}" for b in buf[offset:offset + 6])
        return [unpack_from(buf, offset + i * t.elem.size, t.elem, pretty) for i in range(t.length)]
    raise CodecError(f"cannot decode a {t}")


def decode(t: Any, data: bytes | bytearray, pretty: bool = False) -> Any:
    if len(data) < t.size:
        raise CodecError(f"{len(data)} bytes are too few for {t} ({t.size} bytes)")
    return unpack_from(data, 0, t, pretty)


def format_value(value: Any, compact: bool = False) -> str:
    """A decoded value on one line: ``{snd_una: 3, peer: 10.111.0.2, mac: 02:e7:...}``;
    `compact` (for side-by-side columns) gives ``{snd_una=3, peer=10.111.0.2}`` and lists
    without spaces."""
    pair, sep = ("{}={}", ", ") if compact else ("{}: {}", ", ")
    if isinstance(value, dict):
        return "{" + sep.join(pair.format(k, format_value(v, compact))
                              for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ("," if compact else ", ").join(format_value(v, compact) for v in value) + "]"
    return str(value)

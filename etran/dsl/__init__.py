"""The names of the transport language, for editors and type checkers.

Transport files start with `from etran.dsl import *`. The compiler never runs
this module: it parses transport files with its own grammar and knows these
names itself (`etran.check.builtins`; a test keeps the two lists equal).
What is here lets Python tools understand a transport file: every name
exists, types are `int` subclasses, maps and packets have their methods with
signatures, and decorators return the function unchanged.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from etran.abi import XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
F = TypeVar("F", bound=Callable[..., Any])


# ---------------------------------------------------------------- integer types
class u8(int): ...
class u16(int): ...
class u32(int): ...
class u64(int): ...
class i8(int): ...
class i16(int): ...
class i32(int): ...
class i64(int): ...
class be16(int):
    """A 16-bit field stored big-endian (network order); reads as a host-order u16."""
class be32(int):
    """A 32-bit field stored big-endian (network order); reads as a host-order u32."""
class be64(int):
    """A 64-bit field stored big-endian (network order); reads as a host-order u64."""


class Array(Generic[T]):
    """`Array[T, N]`: N elements of T stored inline in a struct."""

    def __class_getitem__(cls, item: Any) -> Any:
        return cls

    def __getitem__(self, i: int) -> T: ...  # type: ignore[empty-body]
    def __setitem__(self, i: int, v: T) -> None: ...


class SpinLock:
    """A `bpf_spin_lock` field; take it with `with value.lock:`."""

    def __enter__(self) -> None: ...
    def __exit__(self, *a: object) -> None: ...


class Timer:
    """A `bpf_timer` field; arm it with `value.timer.start(delay_ns)`."""

    def start(self, delay_ns: int) -> bool: ...  # type: ignore[empty-body]
    def cancel(self) -> bool: ...  # type: ignore[empty-body]


class Struct:
    """Base of struct declarations: fields with natural alignment, zero-initialised."""

    size: ClassVar[int]

    def __init__(self, **fields: int) -> None: ...


class Header:
    """Base of packet header declarations: packed fields, read through `pkt.header(H, off)`."""

    size: ClassVar[int]

    def __init__(self, **fields: int) -> None: ...


class Packet:
    """The frame a hook runs on."""

    len: int
    rx_queue: int
    ifindex: int

    def header(self, h: type[T], offset: int) -> T | None: ...
    def resize_head(self, delta: int) -> bool: ...  # type: ignore[empty-body]
    def resize_tail(self, delta: int) -> bool: ...  # type: ignore[empty-body]


# ---------------------------------------------------------------- maps
class _KeyedMap(Generic[K, V]):
    def __init__(self, key: type[K], value: type[V], max_entries: int) -> None: ...
    def get(self, key: K) -> V | None: ...
    def set(self, key: K, value: V) -> bool: ...  # type: ignore[empty-body]
    def insert(self, key: K, value: V) -> bool: ...  # type: ignore[empty-body]
    def replace(self, key: K, value: V) -> bool: ...  # type: ignore[empty-body]
    def delete(self, key: K) -> bool: ...  # type: ignore[empty-body]
    def __setitem__(self, key: K, value: V) -> None: ...


class HashMap(_KeyedMap[K, V]):
    """A hash table; `get` returns a reference into the map."""
class LruHashMap(_KeyedMap[K, V]):
    """A hash table that evicts the least recently used entries."""
class PerCpuHashMap(_KeyedMap[K, V]):
    """A hash table with one value per CPU."""


class ArrayMap(Generic[V]):
    """An array of `max_entries` values indexed by u32; every slot exists and starts zeroed."""

    def __init__(self, value: type[V], max_entries: int) -> None: ...
    def get(self, index: int) -> V | None: ...
    def set(self, index: int, value: V) -> bool: ...  # type: ignore[empty-body]
    def __setitem__(self, index: int, value: V) -> None: ...


class PerCpuArray(ArrayMap[V]):
    """An ArrayMap with one copy of every slot per CPU."""


class Queue(Generic[V]):
    def __init__(self, value: type[V], max_entries: int) -> None: ...
    def push(self, value: V) -> bool: ...  # type: ignore[empty-body]
    def pop(self) -> V | None: ...


class RingBuf(Generic[V]):
    """A ring buffer of `V` records read by user space; `max_entries` is its size in bytes."""

    def __init__(self, value: type[V], max_entries: int) -> None: ...
    def output(self, value: V) -> bool: ...  # type: ignore[empty-body]


class XskMap:
    """AF_XDP sockets by queue index."""

    def __init__(self, max_entries: int) -> None: ...
    def redirect(self, key: int, fallback: int) -> int: ...  # type: ignore[empty-body]


class DevMap:
    """Network devices by index, for redirecting frames out of another interface."""

    def __init__(self, max_entries: int) -> None: ...
    def redirect(self, key: int, fallback: int) -> int: ...  # type: ignore[empty-body]


# ---------------------------------------------------------------- hooks
def xdp(fn: F) -> F:
    """Ingress: runs on every frame the interface receives."""
    return fn


def egress(fn: F) -> F:
    """Egress: runs on every frame the application transmits, before it leaves."""
    return fn


def gen(fn: F) -> F:
    """Generation: runs after each receive batch to emit frames (ACKs, grants)."""
    return fn


def timer(field: Any) -> Callable[[F], F]:
    """`@timer(Conn.rto)`: the handler run when that Timer field of a map value fires."""
    def deco(fn: F) -> F:
        return fn
    return deco


# ---------------------------------------------------------------- helpers
def now_ns() -> u64: ...  # type: ignore[empty-body]
def cpu_id() -> u32: ...  # type: ignore[empty-body]
def random_u32() -> u32: ...  # type: ignore[empty-body]
def atomic_add(place: int, value: int) -> int: ...  # type: ignore[empty-body]
def atomic_xchg(place: int, value: int) -> int: ...  # type: ignore[empty-body]
def atomic_cas(place: int, expected: int, value: int) -> int: ...  # type: ignore[empty-body]
def seq_after(a: int, b: int) -> bool: ...  # type: ignore[empty-body]
def seq_before(a: int, b: int) -> bool: ...  # type: ignore[empty-body]
def seq_after_eq(a: int, b: int) -> bool: ...  # type: ignore[empty-body]
def seq_before_eq(a: int, b: int) -> bool: ...  # type: ignore[empty-body]



__all__ = [
    "XDP_ABORTED",
    "XDP_DROP",
    "XDP_PASS",
    "XDP_REDIRECT",
    "XDP_TX",
    "Array",
    "ArrayMap",
    "DevMap",
    "HashMap",
    "Header",
    "LruHashMap",
    "Packet",
    "PerCpuArray",
    "PerCpuHashMap",
    "Queue",
    "RingBuf",
    "SpinLock",
    "Struct",
    "Timer",
    "XskMap",
    "atomic_add",
    "atomic_cas",
    "atomic_xchg",
    "be16",
    "be32",
    "be64",
    "cpu_id",
    "egress",
    "gen",
    "i8",
    "i16",
    "i32",
    "i64",
    "now_ns",
    "random_u32",
    "seq_after",
    "seq_after_eq",
    "seq_before",
    "seq_before_eq",
    "timer",
    "u8",
    "u16",
    "u32",
    "u64",
    "xdp",
]

"""The world a program runs in, as the reference interpreter models it: maps and packets.

Map contents are raw bytes keyed by raw bytes, exactly as the kernel stores
them, so the interpreter's maps and the kernel's maps compare byte for byte.
`MapStore.snapshot()` gives the canonical form both sides are compared in.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from etran.abi import MAX_TEST_FRAME, TEST_RUN_HEADROOM, XDP_FRAME_SIZE
from etran.ir import codec, tir
from etran.ir.types import MapType, SpinLockType, StructType, TimerType

# What BPF_PROG_TEST_RUN gives an XDP program on this kernel (measured; see
# tests/kernel/test_resize_limits.py): room to grow the head and the tail.
DEFAULT_HEADROOM = TEST_RUN_HEADROOM - XDP_FRAME_SIZE  # XDP_PACKET_HEADROOM minus struct xdp_frame
RINGBUF_HEADER = 8


class Ref:
    """A reference to memory: a byte buffer and an offset, plus the map entry it lives in."""

    __slots__ = ("buf", "key", "map", "off")

    def __init__(self, buf: bytearray, off: int = 0, map: str | None = None,
                 key: bytes | None = None) -> None:
        self.buf = buf
        self.off = off
        self.map = map
        self.key = key

    def at(self, delta: int) -> Ref:
        return Ref(self.buf, self.off + delta, self.map, self.key)

    def __repr__(self) -> str:
        return f"Ref({self.map or 'mem'}+{self.off})"


def special_ranges(t: StructType | None) -> list[tuple[int, int]]:
    """Byte ranges of SpinLock/Timer fields: the kernel owns them and reads them as zero."""
    if t is None:
        return []
    return [(f.offset, f.offset + f.type.size) for f in t.fields
            if isinstance(f.type, (SpinLockType, TimerType))]


@dataclass
class MapState:
    """One map's contents. Per-CPU maps keep one value per CPU."""

    map: MapType
    ncpu: int
    entries: OrderedDict[bytes, Any] = field(default_factory=OrderedDict)
    queue: list[bytes] = field(default_factory=list)
    ring_used: int = 0

    @property
    def kind(self) -> str:
        return self.map.kind

    def zero_value(self) -> bytearray:
        return bytearray(self.map.value_size)

    def array_slot(self, index: int) -> Any:
        """Array slots always exist: created zeroed on first touch."""
        key = index.to_bytes(4, "little")
        if key not in self.entries:
            if self.map.is_percpu:
                self.entries[key] = [self.zero_value() for _ in range(self.ncpu)]
            else:
                self.entries[key] = self.zero_value()
        return self.entries[key]

    def copy(self) -> MapState:
        out = MapState(self.map, self.ncpu)
        for k, v in self.entries.items():
            out.entries[k] = [bytearray(x) for x in v] if isinstance(v, list) else \
                (bytearray(v) if isinstance(v, (bytes, bytearray)) else v)
        out.queue = list(self.queue)
        return out


class MapStore:
    """The contents of every map of a program."""

    def __init__(self, program: tir.Program, ncpu: int = 1) -> None:
        self.program = program
        self.ncpu = ncpu
        self.maps: dict[str, MapState] = {m.name: MapState(m, ncpu) for m in program.maps}

    def copy(self) -> MapStore:
        out = MapStore.__new__(MapStore)
        out.program, out.ncpu = self.program, self.ncpu
        out.maps = {n: s.copy() for n, s in self.maps.items()}
        return out

    def __getitem__(self, name: str) -> MapState:
        return self.maps[name]

    # ---------------------------------------------------------------- raw access
    def set_raw(self, name: str, key: bytes, value: bytes | list[bytes] | int) -> None:
        st = self.maps[name]
        if st.kind in ("XskMap", "DevMap"):
            st.entries[key] = value
        elif st.map.is_percpu:
            vals = value if isinstance(value, list) else [value] * self.ncpu
            st.entries[key] = [bytearray(v) for v in vals]
        else:
            st.entries[key] = bytearray(value)  # type: ignore[arg-type]

    def push_raw(self, name: str, value: bytes) -> None:
        self.maps[name].queue.append(bytes(value))

    # ---------------------------------------------------------------- typed access
    def set(self, name: str, key: Any, value: Any) -> None:
        """Set an entry from Python values (dicts for structs), using the DSL layouts."""
        st = self.maps[name]
        m = st.map
        assert m.key is not None
        k = codec.encode(m.key, key, f"{name} key")
        if m.kind in ("XskMap", "DevMap"):
            self.set_raw(name, k, int(value))
            return
        assert m.value is not None
        if m.is_percpu and isinstance(value, list):
            self.set_raw(name, k, [codec.encode(m.value, v, f"{name} value") for v in value])
        else:
            self.set_raw(name, k, codec.encode(m.value, value, f"{name} value"))

    def snapshot(self) -> dict[str, Any]:
        """The canonical comparable form: raw key -> raw value, arrays without zero slots."""
        out: dict[str, Any] = {}
        for name, st in self.maps.items():
            m = st.map
            if m.kind in ("RingBuf", "XskMap"):
                continue  # records are compared as output; sockets cannot be read back
            if m.kind == "Queue":
                out[name] = list(st.queue)
                continue
            entries: dict[bytes, Any] = {}
            for k, v in st.entries.items():
                if isinstance(v, list):
                    vals = [bytes(_clear_special(x, m.value)) for x in v]
                    if m.is_array and all(not any(x) for x in vals):
                        continue
                    entries[bytes(k)] = vals
                elif isinstance(v, (bytes, bytearray)):
                    val = bytes(_clear_special(v, m.value))
                    if m.is_array and not any(val):
                        continue
                    entries[bytes(k)] = val
                else:
                    entries[bytes(k)] = v
            out[name] = dict(sorted(entries.items()))
        return out


def _clear_special(v: bytes | bytearray, t: StructType | None) -> bytes | bytearray:
    ranges = special_ranges(t)
    if not ranges:
        return v
    b = bytearray(v)
    for lo, hi in ranges:
        b[lo:hi] = bytes(hi - lo)
    return b


@dataclass(frozen=True, slots=True)
class TimerStarted:
    map: str
    key: bytes | None
    field: str
    delay_ns: int


@dataclass
class RunInput:
    """Everything a run depends on besides the program."""

    packet: bytes = b""
    maps: MapStore | None = None
    now_ns: int = 0
    cpu: int = 0
    rx_queue: int = 0
    ifindex: int = 1
    random_u32: int = 0
    headroom: int = DEFAULT_HEADROOM
    tailroom: int = 0          # bytes the tail may grow; set from the kernel's frame size


@dataclass
class RunResult:
    """Everything observable a run did."""

    action: int | None
    packet: bytes
    maps: MapStore
    redirect: tuple[str, int] | None = None
    ringbuf: dict[str, list[bytes]] = field(default_factory=dict)
    timers: list[TimerStarted] = field(default_factory=list)
    # how many timer starts in all, when more were made than `timers` holds (a kernel run
    # records only the first etran.lower.observe.MAX_TIMERS)
    timer_count: int | None = None


def frame_input(packet: bytes, **kw: Any) -> RunInput:
    """A RunInput whose head and tail room match what a kernel test run provides."""
    return RunInput(packet=packet, headroom=TEST_RUN_HEADROOM - XDP_FRAME_SIZE,
                    tailroom=max(MAX_TEST_FRAME - len(packet), 0), **kw)

"""Hypothesis strategies for testing transports: frames, map contents, clocks and CPUs.

Use them in your own property tests:

    from hypothesis import given
    from etran.testing.strategies import run_inputs

    @given(inp=run_inputs(program, ncpu=2))
    def test_rx(inp): ...

Frames come from the header families the templates define (Ethernet, IPv4,
UDP, TCP), valid and malformed: truncated at every header boundary, wrong
length fields, wrong versions, options present and absent. Addresses and
ports are drawn from small pools, and map keys from the same pools, so
generated frames find generated map entries and the interesting paths run.
Map contents are derived from the transport's own struct declarations.
"""
from __future__ import annotations

import os
import random
import struct
import weakref
import zlib
from typing import Any

from hypothesis import strategies as st

from etran.abi import LOOPBACK_IFINDEX
from etran.interp.state import MapStore, RunInput, frame_input
from etran.ir import tir
from etran.ir.types import ArrayType, BeType, BoolType, IntType, MapType, SpinLockType, StructType, TimerType
from etran.testing import packets as P

ADDRESSES = ("10.0.0.1", "10.0.0.2", "10.0.0.3", "192.168.1.1")
PORTS = (7, 53, 80, 443, 4791, 5000, 6000, 9000)
MACS = ("02:00:00:00:00:01", "02:00:00:00:00:02")
MAX_FRAME = 3000          # below the kernel's test-run frame limit (3520 bytes)

# Strategies are built once: hypothesis validates and labels every new strategy
# object, which costs more than drawing from it.
_ADDR = st.sampled_from(ADDRESSES)
_PORT = st.sampled_from(PORTS)
_MAC = st.sampled_from(MACS)
_BYTE = st.integers(0, 255)
_U16 = st.integers(0, 0xFFFF)
_U32 = st.integers(0, 2**32 - 1)
_TOS = st.one_of(st.sampled_from([0, 1, 2, 3, 0x04, 0xB8]), _BYTE)
_TTL = st.sampled_from([0, 1, 64, 255])
_FAMILY = st.sampled_from(["eth", "ipv4", "udp", "tcp"])
_ETH_PROTO = st.one_of(st.sampled_from([0x0806, 0x86DD, 0x8100]), _U16)
_IP_PROTO = st.one_of(st.sampled_from([1, 0xFD]), _BYTE)
_IP_OPTS = st.sampled_from([b"", b"\x01\x01\x01\x00", bytes(8)])
_TCP_FLAGS = st.one_of(st.sampled_from([0x02, 0x10, 0x12, 0x11, 0x18, 0x04, 0x50]), _BYTE)
_SEQ = st.one_of(_U32, st.sampled_from([0, 1000, 2448, 2**31, 2**32 - 1]))
_PAYLOAD = st.one_of(st.just(b""), st.binary(max_size=256))
_EDGES: dict[tuple[int, bool], st.SearchStrategy[int]] = {}


def edge_ints(bits: int, signed: bool) -> st.SearchStrategy[int]:
    """Integers of a width, biased toward the values where implementations diverge."""
    if (bits, signed) not in _EDGES:
        _EDGES[(bits, signed)] = _edge_ints(bits, signed)
    return _EDGES[(bits, signed)]


def _edge_ints(bits: int, signed: bool) -> st.SearchStrategy[int]:
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    candidates = {0, 1, 2, hi, hi - 1, lo, lo + 1, bits, bits - 1, bits + 1, 7, 255,
                  (1 << (bits // 2)) - 1, -1}
    edges = sorted((v for v in candidates if lo <= v <= hi), key=abs)
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi),
                     st.integers(0, min(hi, 2000)))


# ---------------------------------------------------------------- frames
@st.composite
def tcp_options(draw: st.DrawFn) -> bytes:
    """A TCP option list: well-formed options, NOPs, EOL, and sometimes a malformed length."""
    out = b""
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["mss", "ws", "sack", "ts", "nop", "eol", "bad"]))
        if kind == "mss":
            out += bytes([2, 4]) + struct.pack("!H", draw(st.integers(0, 0xFFFF)))
        elif kind == "ws":
            out += bytes([3, 3, draw(st.integers(0, 20))])
        elif kind == "sack":
            out += bytes([4, 2])
        elif kind == "ts":
            out += bytes([8, 10]) + struct.pack("!II", draw(st.integers(0, 2**32 - 1)),
                                                  draw(st.integers(0, 2**32 - 1)))
        elif kind == "nop":
            out += b"\x01"
        elif kind == "eol":
            out += b"\x00"
        else:
            out += bytes([draw(st.integers(9, 255)), draw(st.integers(0, 60))])
    return out[:40]


_TCP_OPTIONS = st.one_of(st.just(b""), tcp_options())


@st.composite
def valid_frames(draw: st.DrawFn, family: str = "any") -> bytes:
    """A well-formed frame of the family ("eth", "ipv4", "udp", "tcp" or "any")."""
    fam = draw(_FAMILY) if family == "any" else family
    src, dst = draw(_ADDR), draw(_ADDR)
    mac_src, mac_dst = draw(_MAC), draw(_MAC)
    tos, ttl = draw(_TOS), draw(_TTL)
    if fam == "eth":
        return P.eth(draw(_PAYLOAD), src=mac_src, dst=mac_dst, proto=draw(_ETH_PROTO))
    if fam == "ipv4":
        return P.eth(P.ipv4(draw(_PAYLOAD), src=src, dst=dst, proto=draw(_IP_PROTO), tos=tos,
                            ttl=ttl, options=draw(_IP_OPTS)), src=mac_src, dst=mac_dst)
    sport, dport = draw(_PORT), draw(_PORT)
    if fam == "udp":
        return P.eth(P.ipv4(P.udp(draw(_PAYLOAD), sport=sport, dport=dport, src=src, dst=dst),
                            src=src, dst=dst, proto=17, tos=tos, ttl=ttl), src=mac_src, dst=mac_dst)
    opts = draw(_TCP_OPTIONS)
    segment = P.tcp(draw(_PAYLOAD), sport=sport, dport=dport, seq=draw(_SEQ), ack=draw(_SEQ),
                    flags=draw(_TCP_FLAGS), window=draw(_U16), options=opts, src=src, dst=dst)
    return P.eth(P.ipv4(segment, src=src, dst=dst, proto=6, tos=tos, ttl=ttl),
                 src=mac_src, dst=mac_dst)


@st.composite
def malformed_frames(draw: st.DrawFn, family: str = "any") -> bytes:
    """A frame broken the ways real traffic and attackers break them."""
    frame = bytearray(draw(valid_frames(family if family != "eth" else "udp")))
    how = draw(st.sampled_from(["truncate_boundary", "truncate_any", "ip_len", "ihl",
                                "version", "udp_len", "doff", "random"]))
    if how == "truncate_boundary":
        cut = draw(st.sampled_from([14, 20, 33, 34, 38, 41, 42, 53, 54]))
        frame = frame[:max(cut, 14)]
    elif how == "truncate_any":
        frame = frame[:draw(st.integers(14, max(14, len(frame))))]
    elif how == "ip_len" and len(frame) >= 18:
        struct.pack_into("!H", frame, 16, draw(st.sampled_from([0, 19, 20, 0xFFFF,
                                                                draw(st.integers(0, 0xFFFF))])))
    elif how == "ihl" and len(frame) > 14:
        frame[14] = (frame[14] & 0xF0) | draw(st.sampled_from([0, 1, 4, 6, 15]))
    elif how == "version" and len(frame) > 14:
        frame[14] = (draw(st.sampled_from([0, 6, 15])) << 4) | (frame[14] & 0x0F)
    elif how == "udp_len" and len(frame) >= 40:
        struct.pack_into("!H", frame, 38, draw(st.sampled_from([0, 7, 8, 0xFFFF])))
    elif how == "doff" and len(frame) >= 47:
        frame[46] = (draw(st.sampled_from([0, 4, 5, 15])) << 4) | (frame[46] & 0x0F)
    else:
        frame = bytearray(draw(st.binary(min_size=14, max_size=300)))
    return bytes(frame)


def frames(family: str = "any", malformed: bool | None = None) -> st.SearchStrategy[bytes]:
    """Frames of a family; `malformed=None` mixes valid (mostly) and malformed ones."""
    if malformed is True:
        return malformed_frames(family)
    if malformed is False:
        return valid_frames(family)
    return st.one_of(valid_frames(family), valid_frames(family), malformed_frames(family))


# ---------------------------------------------------------------- values from declarations
_FIELDS: dict[tuple[Any, str], st.SearchStrategy[Any]] = {}
_STRUCTS: weakref.WeakKeyDictionary[StructType, st.SearchStrategy[dict[str, Any]]] = \
    weakref.WeakKeyDictionary()


def _field_value(t: Any, name: str) -> st.SearchStrategy[Any]:
    if isinstance(t, StructType) or (isinstance(t, ArrayType) and _has_struct(t)):
        return _make_field_value(t, name)  # cached per struct by struct_values
    key = (t, name)
    if key not in _FIELDS:
        _FIELDS[key] = _make_field_value(t, name)
    return _FIELDS[key]


def _has_struct(t: Any) -> bool:
    return isinstance(t, StructType) or (isinstance(t, ArrayType) and _has_struct(t.elem))


def _make_field_value(t: Any, name: str) -> st.SearchStrategy[Any]:
    if isinstance(t, BeType):
        if t.bits == 32 and not any(w in name for w in ("seq", "ack", "id")):
            return st.one_of(st.sampled_from(ADDRESSES), st.integers(0, 2**32 - 1))
        if t.bits == 16 and "port" in name:
            return st.one_of(st.sampled_from(PORTS), st.integers(0, 0xFFFF))
        return edge_ints(t.bits, False)
    if isinstance(t, IntType):
        if "port" in name and t.bits >= 16 and not t.signed:
            return st.one_of(st.sampled_from(PORTS), edge_ints(t.bits, False))
        return edge_ints(t.bits, t.signed)
    if isinstance(t, BoolType):
        return st.booleans()
    if isinstance(t, (SpinLockType, TimerType)):
        return st.none()
    if isinstance(t, StructType):
        return struct_values(t)
    if isinstance(t, ArrayType):
        return st.lists(_field_value(t.elem, name), min_size=t.length, max_size=t.length)
    raise TypeError(f"no values for {t}")


def struct_values(t: StructType) -> st.SearchStrategy[dict[str, Any]]:
    """Values of a struct type as dicts of field values (SpinLock/Timer left to the kernel)."""
    cached = _STRUCTS.get(t)
    if cached is None:
        fields = {f.name: _field_value(f.type, f.name) for f in t.fields
                  if not isinstance(f.type, (SpinLockType, TimerType))}
        cached = _STRUCTS[t] = st.fixed_dictionaries(fields)
    return cached


def key_values(m: MapType) -> st.SearchStrategy[Any]:
    assert m.key is not None
    if m.is_array:
        return st.integers(0, min(m.max_entries, 64) - 1)
    if isinstance(m.key, StructType):
        return struct_values(m.key)
    return _field_value(m.key, "key")


@st.composite
def map_contents(draw: st.DrawFn, program: tir.Program, ncpu: int = 1,
                 max_entries: int = 6) -> MapStore:
    """Contents for every map of `program`, drawn from its struct declarations.

    DevMap slots hold loopback, the one interface every network namespace has (the
    kernel takes only existing interfaces), XskMaps stay empty (their slots are
    sockets), LRU maps stay below capacity (the kernel's LRU eviction is
    approximate), and ring buffers start empty.
    """
    store = MapStore(program, ncpu)
    for m in program.maps:
        if m.kind == "DevMap":
            slots = min(m.max_entries, 64)
            for slot in draw(st.sets(st.integers(0, slots - 1), max_size=min(max_entries, slots))):
                store.set_raw(m.name, slot.to_bytes(4, "little"), LOOPBACK_IFINDEX)
            continue
        if m.kind in ("XskMap", "RingBuf"):
            continue
        assert m.value is not None
        limit = min(max_entries, m.max_entries - (1 if m.kind == "LruHashMap" else 0))
        if m.kind == "Queue":
            for v in draw(st.lists(struct_values(m.value), max_size=min(limit, m.max_entries))):
                from etran.ir import codec
                store.push_raw(m.name, codec.encode(m.value, v))
            continue
        n = draw(st.integers(0, max(limit, 0)))
        for _ in range(n):
            key = draw(key_values(m))
            if m.is_percpu:
                store.set(m.name, key, [draw(struct_values(m.value)) for _ in range(ncpu)])
            else:
                store.set(m.name, key, draw(struct_values(m.value)))
    return store


def clocks() -> st.SearchStrategy[int]:
    """Monotonic clock values: small, large, and near the wrap."""
    return st.one_of(st.sampled_from([0, 1, 1_000_000, 10**12, 2**63, 2**64 - 1]),
                     st.integers(0, 2**64 - 1))


def cpus(ncpu: int) -> st.SearchStrategy[int]:
    import os
    usable = sorted(os.sched_getaffinity(0))[:max(ncpu, 1)]
    return st.sampled_from(usable)


@st.composite
def run_inputs(draw: st.DrawFn, program: tir.Program, ncpu: int = 1, family: str = "any",
               packet: st.SearchStrategy[bytes] | None = None) -> RunInput:
    """A complete input for a hook: a frame, map contents, a clock, a CPU, a random value."""
    frame = draw(packet if packet is not None else frames(family))
    return frame_input(frame[:MAX_FRAME], maps=draw(map_contents(program, ncpu)),
                       now_ns=draw(clocks()), cpu=draw(cpus(ncpu)),
                       random_u32=draw(st.integers(0, 2**32 - 1)))


# ---------------------------------------------------------------- fast, byte-driven inputs
# Edge values of any width (`ByteSource.int_for`) and 32-bit words put in payloads
# (`_payload`): shift counts at and past the widths, sign bits and their neighbours,
# all-ones, sequence numbers around 2**31 and 2**32.
EDGE_INTS = (0, 1, -1, -2, 3, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 255, 256, 0x7FFF,
             0x8000, 0xFFFF, 0x10000, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 2, 2**32 - 1, 2**32,
             2**63 - 1, 2**63, 2**64 - 1, -2**31, -2**63)
EDGE_WORDS = tuple(bytes.fromhex(w) for w in (
    "00000000 ffffffff 80000000 7fffffff 00000001 01000000 00000080 7f000000 fffffffe feffffff "
    "0000ffff ffff0000 00008000 00800000 0000001f 1f000000 00000020 20000000 00000021 00000040 "
    "80808080 7f7f7f7f 00010000 00000100").split())


class ByteSource:
    """Decisions read from a byte string (like libFuzzer's FuzzedDataProvider).

    Hypothesis draws one byte string per input and shrinks it toward zeros;
    every choice below reads from it, with zero bytes meaning the plainest
    choice. One draw per input instead of dozens makes fuzzing about ten times
    faster, and shrinking still yields small, plain inputs. Half the integers
    are edge values (`int_for`), and `inputs_from_bytes` reads an all-zero
    string, hypothesis's favourite, as a seeded random one (`_source`).
    """

    def __init__(self, data: bytes, seed: int | None = None) -> None:
        self.data = data
        self.pos = 0
        self.extra: tuple[int, ...] = ()    # more edge values: the program's map and array bounds
        # Past the end: zeros, or with a seed, bytes of a seeded random (see `_source`).
        self.rng = random.Random(seed) if seed is not None else None

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return self.rng.randrange(256) if self.rng is not None else 0
        b = self.data[self.pos]
        self.pos += 1
        return b

    def bits(self, n: int) -> int:
        v = 0
        for _ in range((n + 7) // 8):
            v = (v << 8) | self.byte()
        return v & ((1 << n) - 1)

    def choice(self, options: tuple[Any, ...] | list[Any]) -> Any:
        return options[self.byte() % len(options)]

    def int_for(self, bits: int, signed: bool) -> int:
        """An integer of a width: half the time an edge value (of the width: 0, 1, -1, the
        extremes, the width as a shift count; or of any width: shift counts, sign bits,
        sequence numbers around 2**32, the program's bounds in `extra`), else uniform."""
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        mode = self.byte()
        if mode < 128:
            edges = (0, 1, hi, lo, hi - 1, lo + 1, 2, bits, bits - 1, bits + 1, 7, -1, 255, 1000) \
                if mode < 80 else EDGE_INTS + self.extra
            v = edges[mode % len(edges)]
            if lo <= v <= hi:
                return v
        raw = self.bits(bits)
        return raw - (1 << bits) if signed and raw > hi else raw

    def rest(self, limit: int) -> bytes:
        n = min(self.byte() * 2, limit)
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        if self.rng is not None and len(out) < n:
            out += self.rng.randbytes(n - len(out))
        return out


def _payload(src: ByteSource, limit: int) -> bytes:
    """Payload bytes; a 32-bit word whose first byte is below 0x40 is replaced by an edge
    word (EDGE_WORDS), so the fields a transport reads past the headers reach the corners."""
    data = bytearray(src.rest(limit))
    for i in range(0, len(data) - 3, 4):
        if data[i] < 0x40:
            data[i:i + 4] = EDGE_WORDS[data[i] % len(EDGE_WORDS)]
    return bytes(data)


def frame_from_bytes(src: ByteSource) -> bytes:
    """A frame chosen by the bytes: family, addresses, fields, and maybe a malformation."""
    fam = src.choice(("udp", "tcp", "ipv4", "eth"))
    a, b = src.choice(ADDRESSES), src.choice(ADDRESSES)
    macs = (src.choice(MACS), src.choice(MACS))
    tos, ttl = src.choice((0, 0, 1, 2, 3, 4, 0xB8, src.byte())), src.choice((64, 0, 1, 255))
    if fam == "eth":
        frame = P.eth(_payload(src, 200), src=macs[0], dst=macs[1],
                      proto=src.choice((0x0806, 0x86DD, 0x8100, src.bits(16))))
    elif fam == "ipv4":
        frame = P.eth(P.ipv4(_payload(src, 200), src=a, dst=b, proto=src.choice((1, 0xFD, src.byte())),
                             tos=tos, ttl=ttl, options=src.choice((b"", bytes(4), b"\1\1\1\0"))),
                      src=macs[0], dst=macs[1])
    elif fam == "udp":
        udp = P.udp(_payload(src, 200), sport=src.choice(PORTS), dport=src.choice(PORTS), src=a, dst=b)
        frame = P.eth(P.ipv4(udp, src=a, dst=b, proto=17, tos=tos, ttl=ttl), src=macs[0], dst=macs[1])
    else:
        opts = b""
        for _ in range(src.byte() % 4):
            kind = src.choice(("nop", "mss", "ws", "ts", "sack", "eol", "bad"))
            opts += {"nop": b"\1", "eol": b"\0", "sack": b"\4\2",
                     "mss": bytes([2, 4]) + src.bits(16).to_bytes(2, "big"),
                     "ws": bytes([3, 3, src.byte() % 20]),
                     "ts": bytes([8, 10]) + src.bits(64).to_bytes(8, "big"),
                     "bad": bytes([9 + src.byte() % 200, src.byte() % 60])}[kind]
        seg = P.tcp(_payload(src, 200), sport=src.choice(PORTS), dport=src.choice(PORTS),
                    seq=src.choice((0, 1000, 2448, 2**31, 2**32 - 1, src.bits(32))),
                    ack=src.choice((0, 1000, 2448, 22000, 2**32 - 1, src.bits(32))),
                    flags=src.choice((0x10, 0x02, 0x12, 0x11, 0x18, 0x04, src.byte())),
                    window=src.bits(16), options=opts[:40], src=a, dst=b)
        frame = P.eth(P.ipv4(seg, src=a, dst=b, proto=6, tos=tos, ttl=ttl), src=macs[0], dst=macs[1])
    f = bytearray(frame)
    how = src.byte()
    if how >= 200:   # about one frame in five is broken on purpose
        kind = how % 6
        if kind == 0:
            f = f[:max(14, src.choice((14, 20, 33, 34, 38, 41, 42, 53, 54, len(f))))]
        elif kind == 1 and len(f) >= 18:
            f[16:18] = src.choice((0, 19, 20, 0xFFFF, src.bits(16))).to_bytes(2, "big")
        elif kind == 2 and len(f) > 14:
            f[14] = (f[14] & 0xF0) | src.choice((0, 1, 4, 6, 15))
        elif kind == 3 and len(f) > 14:
            f[14] = (src.choice((0, 6, 15)) << 4) | (f[14] & 0x0F)
        elif kind == 4 and len(f) >= 47:
            f[46] = (src.choice((0, 4, 15)) << 4) | (f[46] & 0x0F)
        else:
            f = f[:max(14, src.byte() + 14)]
    return bytes(f[:MAX_FRAME])


_ADDR_BYTES = tuple(P.ip4(a) for a in ADDRESSES)


Hints = dict[int, list[int]]


def frame_hints(frame: bytes) -> Hints:
    """Values a transport would look up for this frame: its addresses, ports and queue."""
    hints: Hints = {32: [], 16: [], 8: [0]}
    if len(frame) >= 34 and frame[12:14] == b"\x08\x00":
        hints[32] += [int.from_bytes(frame[26:30], "big"), int.from_bytes(frame[30:34], "big")]
        hints[8].append(frame[23])
        l4 = 14 + (frame[14] & 0x0F) * 4
        if len(frame) >= l4 + 4:
            hints[16] += [int.from_bytes(frame[l4:l4 + 2], "big"),
                          int.from_bytes(frame[l4 + 2:l4 + 4], "big")]
    return hints


# A fill plan flattens a storage type into scalar slots, once per type:
# (offset, size, bits, signed, big_endian, kind) with kind "addr", "port", "bool" or "int".
_Plan = list[tuple[int, int, int, bool, bool, str]]
_PLANS: weakref.WeakKeyDictionary[StructType, _Plan] = weakref.WeakKeyDictionary()


def _plan(t: Any, name: str = "", off: int = 0, out: _Plan | None = None) -> _Plan:
    out = [] if out is None else out
    if isinstance(t, BeType):
        addr = t.bits == 32 and not any(w in name for w in ("seq", "ack", "id"))
        kind = "addr" if addr else ("port" if t.bits == 16 and "port" in name else "int")
        out.append((off, t.size, t.bits, False, True, kind))
    elif isinstance(t, IntType):
        kind = "port" if "port" in name and not t.signed and t.bits >= 16 else "int"
        out.append((off, t.size, t.bits, t.signed, False, kind))
    elif isinstance(t, BoolType):
        out.append((off, 1, 8, False, False, "bool"))
    elif isinstance(t, StructType):
        for f in t.fields:
            if not isinstance(f.type, (SpinLockType, TimerType)):
                _plan(f.type, f.name, off + f.offset, out)
    elif isinstance(t, ArrayType):
        for i in range(t.length):
            _plan(t.elem, name, off + i * t.elem.size, out)
    return out


def _plan_for(t: Any, name: str) -> _Plan:
    if isinstance(t, StructType):
        plan = _PLANS.get(t)
        if plan is None:
            plan = _PLANS[t] = _plan(t)
        return plan
    return _plan(t, name)


def _raw_from_bytes(src: ByteSource, t: Any, name: str = "", hints: Hints | None = None,
                    small: int = 0) -> bytes:
    """A value of storage type `t` chosen by the bytes.

    With `hints` (from the frame under test), keys often take the frame's own
    addresses and ports, so lookups find entries and the deep paths run. With `small`,
    a key's scalars are often below `small` instead: the keys a program computes as
    `x & 3` or `S(f=y & 1)` (etran.testing.progen) then find entries too.
    """
    buf = bytearray(t.size)
    # Keys built from the frame: take its addresses and ports in one orientation per width
    # (src then dst, or dst then src), so a key describes the frame's flow from either side.
    mode = src.byte() if hints or small else 255
    use = bool(hints) and mode < (96 if small else 192)
    tiny = bool(small) and not use and mode < 224
    flip = src.byte() if use else 0
    seen: dict[int, int] = {}
    for off, size, bits, signed, big, kind in _plan_for(t, name):
        hint = hints.get(bits) if (use and hints) else None
        if tiny:
            v = src.byte() % small
        elif hint:
            i = seen.get(bits, 0)
            seen[bits] = i + 1
            v = hint[(i ^ (flip >> (bits // 8))) % len(hint)]
        elif kind == "addr" and src.byte() < 192:
            buf[off:off + 4] = src.choice(_ADDR_BYTES)
            continue
        elif kind == "port" and src.byte() < 192:
            v = src.choice(PORTS)
        elif kind == "bool":
            buf[off] = src.byte() & 1
            continue
        else:
            v = src.int_for(bits, signed)
        buf[off:off + size] = (v & ((1 << bits) - 1)).to_bytes(size, "big" if big else "little")
    return bytes(buf)


def store_from_bytes(src: ByteSource, program: tir.Program, ncpu: int, max_entries: int = 6,
                     hints: Hints | list[Hints] | None = None) -> MapStore:
    """Map contents chosen by the bytes, with the rules of `map_contents`; an array map's
    slots are mostly all set (a slot drawn twice keeps the second value)."""
    store = MapStore(program, ncpu)
    src.extra = program_bounds(program)
    for m in program.maps:
        if m.kind == "DevMap":
            slots = min(m.max_entries, 64)
            for _ in range(src.byte() % (min(max_entries, slots) + 1)):
                store.set_raw(m.name, (src.byte() % slots).to_bytes(4, "little"),
                              LOOPBACK_IFINDEX)
            continue
        if m.kind in ("XskMap", "RingBuf") or m.value is None:
            continue
        limit = min(max_entries, m.max_entries - (1 if m.kind == "LruHashMap" else 0))
        n = src.byte() % (max(limit, 0) + 1)
        if m.is_array and src.byte() < 208:
            n = max(limit, 0)
        for _ in range(n):
            if m.kind == "Queue":
                store.push_raw(m.name, _raw_from_bytes(src, m.value))
                continue
            assert m.key is not None
            if m.is_array:
                key = (src.byte() % min(m.max_entries, 64)).to_bytes(4, "little")
            else:
                h = src.choice(hints) if isinstance(hints, list) and hints else hints
                small = 2 if isinstance(m.key, StructType) else 4
                key = _raw_from_bytes(src, m.key, "key", h, small)  # type: ignore[arg-type]
            if m.is_percpu and src.byte() < 32:
                # one value for every CPU, as a user sets a per-CPU map from the command line
                store.set_raw(m.name, key, _raw_from_bytes(src, m.value))
            elif m.is_percpu:
                store.set_raw(m.name, key, [_raw_from_bytes(src, m.value) for _ in range(ncpu)])
            else:
                store.set_raw(m.name, key, _raw_from_bytes(src, m.value))
    return store


def program_bounds(program: tir.Program) -> tuple[int, ...]:
    """Sizes in `program` and their neighbours: map sizes and array lengths, where an
    index or a key is last valid or first invalid."""
    sizes: set[int] = set()

    def walk(t: Any) -> None:
        if isinstance(t, ArrayType):
            sizes.add(t.length)
            walk(t.elem)
        elif isinstance(t, StructType):
            for f in t.fields:
                walk(f.type)
    for m in program.maps:
        sizes.add(m.max_entries)
        walk(m.value)
        walk(m.key)
    return tuple(sorted({v for n in sizes for v in (n - 1, n, n + 1)}))


def usable_cpus(ncpu: int) -> list[int]:
    """The CPUs a run may be pinned to: this process's, at most `ncpu` of them."""
    return sorted(os.sched_getaffinity(0))[:max(ncpu, 1)]


def fast_run_inputs(program: tir.Program, ncpu: int = 1) -> st.SearchStrategy[RunInput]:
    """`run_inputs`, decided by one drawn byte string: much cheaper per input to generate."""
    usable = usable_cpus(ncpu)

    def build(blobs: tuple[bytes, bytes]) -> RunInput:
        # The frame first, then maps keyed (often) by the frame's own addresses and ports.
        frame = frame_from_bytes(ByteSource(blobs[0]))
        src = ByteSource(blobs[1])
        store = store_from_bytes(src, program, ncpu, hints=frame_hints(frame))
        now = src.choice((0, 1, 1_000_000, 10**12, src.bits(64), 2**32 - 1, 2**63, 2**64 - 1))
        cpu, random = src.choice(usable), src.bits(32)
        return frame_input(frame, maps=store, now_ns=now, cpu=cpu, random_u32=random)

    return st.tuples(st.binary(max_size=300), st.binary(min_size=16, max_size=400)).map(build)


def fast_input_batches(program: tir.Program, ncpu: int = 1,
                       per_example: int = 4) -> st.SearchStrategy[list[RunInput]]:
    """Several inputs per hypothesis example, decided by one draw (`inputs_from_bytes`).
    Generation costs are shared, so a campaign runs more cases per second; a failing
    batch shrinks to its failing frame like any list."""
    usable = usable_cpus(ncpu)

    def build(blobs: tuple[list[bytes], bytes]) -> list[RunInput]:
        return inputs_from_bytes(program, ncpu, blobs[0], blobs[1], usable)

    return input_blobs(per_example).map(build)


def _blob(min_size: int, max_size: int) -> st.SearchStrategy[bytes]:
    """Bytes drawn by hypothesis, or (as often) seeded random bytes: hypothesis draws many
    all-zero strings, its simplest, and repeats a program with few different inputs; a
    drawn seed varies on every example. Shrinking goes to the drawn bytes, then zeros."""
    return st.one_of(st.binary(min_size=min_size, max_size=max_size),
                     st.integers(0, 2**32 - 1).map(
                         lambda seed: random.Random(seed).randbytes(max_size)))


_FRAME_BLOB = _blob(48, 300)
_REST_BLOB = _blob(160, 600)


def input_blobs(per_example: int) -> st.SearchStrategy[tuple[list[bytes], bytes]]:
    """The bytes `inputs_from_bytes` turns into inputs: one string per frame, one for the rest."""
    # Long enough that most frames carry a payload and most map values are drawn from
    # bytes (past its end a ByteSource reads zeros); shrinking still goes to zero bytes.
    return st.tuples(st.lists(_FRAME_BLOB, min_size=per_example, max_size=per_example),
                     _REST_BLOB)


def _source(blob: bytes, seed: int) -> ByteSource:
    """The bytes of one input; an all-zero string (which hypothesis draws often: it is its
    simplest) reads a seeded random instead, different per program and per frame, so that
    those draws test something besides all-zero frames and map values. Other strings read
    zeros past their end, the plainest choices, as shrinking wants."""
    return ByteSource(blob) if any(blob) else ByteSource(b"", seed)


def inputs_from_bytes(program: tir.Program, ncpu: int, frame_blobs: list[bytes], rest: bytes,
                      cpus: list[int] | None = None) -> list[RunInput]:
    """Inputs decided by bytes: a frame per blob, and map contents (keyed, often, by those
    frames' addresses and ports), clocks and CPUs decided by `rest`. Each input has map
    contents of its own (the first input's from `rest`, the others' from `rest` rotated), so
    that the values a program reads from its maps differ between the runs of one example."""
    salt = zlib.crc32(program.source.encode())
    frames = [frame_from_bytes(_source(b, salt + i)) for i, b in enumerate(frame_blobs)]
    hints = [frame_hints(f) for f in frames]
    src = _source(rest, salt - 1)
    stores = [store_from_bytes(src, program, ncpu, hints=hints)]
    for i in range(1, len(frames)):
        cut = i * len(rest) // len(frames)
        stores.append(store_from_bytes(_source(rest[cut:] + rest[:cut], salt - 1 - i), program,
                                       ncpu, hints=hints))
    usable = cpus or [0]
    out = []
    for frame, store in zip(frames, stores):
        now = src.choice((0, 1, 1_000_000, 10**12, src.bits(64), 2**32 - 1, 2**63, 2**64 - 1))
        out.append(frame_input(frame, maps=store, now_ns=now, cpu=src.choice(usable),
                               random_u32=src.bits(32)))
    return out

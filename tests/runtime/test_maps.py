"""Maps from Python (hash, array, per-CPU array, queue, LRU hash) and from a program, and a
ring buffer written by a program and drained in order."""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator

import pytest

from etran.abi import BPF_EXIST, BPF_NOEXIST
from etran.runtime import BpfError, EtranRuntimeError, RingBufferReader, load_object, possible_cpus
from etran.runtime.loader import LoadedObject

from .irobjects import (
    ARRAY,
    HASH,
    LRU_HASH,
    MAP_LOOKUP_ELEM,
    MAP_PUSH_ELEM,
    MAP_UPDATE_ELEM,
    PERCPU_ARRAY,
    QUEUE,
    RINGBUF,
    RINGBUF_OUTPUT,
    XDP_PASS,
    MapDef,
    build_object,
)

pytestmark = pytest.mark.kernel

MAPS = [MapDef("arr", ARRAY, 4, 4, 8), MapDef("pcpu", PERCPU_ARRAY, 2, 4, 8),
        MapDef("h", HASH, 64, 4, 8), MapDef("lru", LRU_HASH, 16, 4, 8),
        MapDef("q", QUEUE, 8, 0, 8), MapDef("rb", RINGBUF, 4096)]

# Per packet: arr[0] += 1 (atomic), pcpu[0] += 1, h[len] = lru[len] = len, push len onto q,
# and write len (8 bytes) into the ring buffer.
COUNT = f"""
define i32 @count(ptr %ctx) section "xdp" {{
  %k = alloca i32, align 4
  %v = alloca i64, align 8
  %d32 = load i32, ptr %ctx, align 4
  %ep = getelementptr i8, ptr %ctx, i64 4
  %e32 = load i32, ptr %ep, align 4
  %len32 = sub i32 %e32, %d32
  %len = zext i32 %len32 to i64
  store i32 0, ptr %k, align 4
  %a = call ptr inttoptr (i64 {MAP_LOOKUP_ELEM} to ptr)(ptr @arr, ptr %k)
  %a_null = icmp eq ptr %a, null
  br i1 %a_null, label %out, label %bump
bump:
  %old = atomicrmw add ptr %a, i64 1 seq_cst
  %p = call ptr inttoptr (i64 {MAP_LOOKUP_ELEM} to ptr)(ptr @pcpu, ptr %k)
  %p_null = icmp eq ptr %p, null
  br i1 %p_null, label %out, label %record
record:
  %c = load i64, ptr %p, align 8
  %c1 = add i64 %c, 1
  store i64 %c1, ptr %p, align 8
  store i32 %len32, ptr %k, align 4
  store i64 %len, ptr %v, align 8
  %r1 = call i64 inttoptr (i64 {MAP_UPDATE_ELEM} to ptr)(ptr @h, ptr %k, ptr %v, i64 0)
  %r2 = call i64 inttoptr (i64 {MAP_UPDATE_ELEM} to ptr)(ptr @lru, ptr %k, ptr %v, i64 0)
  %r3 = call i64 inttoptr (i64 {MAP_PUSH_ELEM} to ptr)(ptr @q, ptr %v, i64 0)
  %r4 = call i64 inttoptr (i64 {RINGBUF_OUTPUT} to ptr)(ptr @rb, ptr %v, i64 8, i64 0)
  br label %out
out:
  ret i32 {XDP_PASS}
}}
"""


@functools.cache
def elf() -> bytes:
    return build_object(COUNT, MAPS)


@pytest.fixture
def obj(kernel: None) -> Iterator[LoadedObject]:
    with load_object(elf(), "maps") as loaded:
        yield loaded


def u32(n: int) -> bytes:
    return struct.pack("<I", n)


def u64(n: int) -> bytes:
    return struct.pack("<Q", n)


def test_metadata(obj: LoadedObject) -> None:
    described = {name: (m.type_name, m.key_size, m.value_size, m.max_entries)
                 for name, m in obj.maps.items()}
    assert described == {"arr": ("array", 4, 8, 4), "pcpu": ("percpu_array", 4, 8, 2),
                         "h": ("hash", 4, 8, 64), "lru": ("lru_hash", 4, 8, 16),
                         "q": ("queue", 0, 8, 8), "rb": ("ringbuf", 0, 0, 4096)}
    assert all(m.fd > 0 and m.flags == 0 for m in obj.maps.values())


def test_hash(obj: LoadedObject) -> None:
    h = obj.maps["h"]
    assert h.lookup(u32(1)) is None and list(h.keys()) == []
    for k in range(5):
        h.update(u32(k), u64(k * 10))
    assert h.lookup(u32(3)) == u64(30)
    assert sorted(h.keys()) == [u32(k) for k in range(5)] and len(h) == 5
    assert dict(h.items()) == {u32(k): u64(k * 10) for k in range(5)}
    h.update(u32(3), u64(33), BPF_EXIST)
    with pytest.raises(BpfError) as caught:
        h.update(u32(3), u64(0), BPF_NOEXIST)
    assert caught.value.errno == 17 and "update an element of map 'h'" in str(caught.value)
    assert h.delete(u32(3)) is True and h.delete(u32(3)) is False
    h.clear()
    assert len(h) == 0


def test_sizes_are_checked_before_the_kernel_reads_them(obj: LoadedObject) -> None:
    h = obj.maps["h"]
    with pytest.raises(EtranRuntimeError, match="3-byte key; map 'h' has 4-byte keys"):
        h.lookup(b"abc")
    with pytest.raises(EtranRuntimeError, match="takes 8 bytes"):
        h.update(u32(1), b"short")


def test_array(obj: LoadedObject) -> None:
    arr = obj.maps["arr"]
    assert [arr.lookup(u32(i)) for i in range(4)] == [u64(0)] * 4
    assert arr.lookup(u32(4)) is None  # out of range reads as absent
    arr.update(u32(2), u64(99))
    assert arr.lookup(u32(2)) == u64(99) and len(list(arr.keys())) == 4
    with pytest.raises(BpfError) as caught:
        arr.delete(u32(2))  # array elements cannot be deleted
    assert caught.value.errno == 22
    arr.clear()
    assert arr.lookup(u32(2)) == u64(0)


def test_percpu_array(obj: LoadedObject) -> None:
    pcpu, ncpu = obj.maps["pcpu"], possible_cpus()
    assert pcpu.lookup_size == ncpu * 8 and len(pcpu.lookup(u32(0)) or b"") == ncpu * 8
    pcpu.update(u32(1), u64(7))  # one value: every CPU gets it
    assert pcpu.lookup_percpu(u32(1)) == [u64(7)] * ncpu
    pcpu.update(u32(1), b"".join(u64(c) for c in range(ncpu)))  # one value per CPU
    assert pcpu.lookup_percpu(u32(1)) == [u64(c) for c in range(ncpu)]
    with pytest.raises(EtranRuntimeError, match="not a per-CPU one"):
        obj.maps["arr"].lookup_percpu(u32(0))


def test_queue(obj: LoadedObject) -> None:
    q = obj.maps["q"]
    assert q.pop() is None and q.peek() is None
    for v in range(8):
        q.push(u64(v))
    with pytest.raises(BpfError) as caught:
        q.push(u64(8))  # full
    assert caught.value.errno == 7  # E2BIG
    q.push(u64(8), BPF_EXIST)  # overwrite the oldest
    assert q.peek() == u64(1)
    assert [q.pop() for _ in range(8)] == [u64(v) for v in range(1, 9)]
    assert q.pop() is None
    q.push(u64(1))
    q.clear()
    assert q.pop() is None
    with pytest.raises(EtranRuntimeError, match="not a queue"):
        obj.maps["h"].push(u64(1))


def test_lru_hash_evicts_instead_of_failing(obj: LoadedObject) -> None:
    lru = obj.maps["lru"]
    for k in range(100):
        lru.update(u32(k), u64(k))
    assert 0 < len(lru) <= 16
    assert lru.lookup(u32(99)) == u64(99)  # the newest survives
    lru.clear()
    assert len(lru) == 0


def test_devmap_slots_hold_existing_interfaces_and_clear_empties_them(kernel: None) -> None:
    """A devmap's slots are empty until set to an interface the kernel resolves; they cannot
    be zeroed like an array's, so clear() deletes every slot (it once refused devmaps)."""
    import errno
    import socket

    from etran.abi import LOOPBACK_IFINDEX, MAP_TYPES
    from etran.runtime import libbpf as lb
    from etran.runtime.maps import Map

    with Map.from_fd(lb.map_create(MAP_TYPES["devmap"], 4, 4, 4, "ports")) as ports:
        assert [ports.lookup(u32(i)) for i in range(4)] == [None] * 4
        ports.update(u32(1), u32(LOOPBACK_IFINDEX))
        ports.update(u32(3), u32(LOOPBACK_IFINDEX))
        assert dict(ports.items()) == {u32(1): u32(LOOPBACK_IFINDEX), u32(3): u32(LOOPBACK_IFINDEX)}
        unused = max(index for index, _ in socket.if_nameindex()) + 1000
        with pytest.raises(BpfError) as caught:
            ports.update(u32(0), u32(unused))  # the kernel resolves the interface
        assert caught.value.errno == errno.EINVAL
        ports.update(u32(3), u32(0))  # ifindex 0 empties a slot instead
        assert dict(ports.items()) == {u32(1): u32(LOOPBACK_IFINDEX)}
        ports.clear()
        assert dict(ports.items()) == {} and len(list(ports.keys())) == 4
    for kind in ("xskmap", "cpumap"):  # the other slot maps: emptied the same way
        with Map.from_fd(lb.map_create(MAP_TYPES[kind], 4, 4, 4, kind)) as slots:
            slots.clear()


def test_a_program_writes_every_map(obj: LoadedObject) -> None:
    prog = obj.programs["count"]
    lengths = [60, 61, 60, 100]
    with RingBufferReader(obj.maps["rb"]) as ring:
        for n in lengths:
            assert prog.test_run(bytes(n)).retval == XDP_PASS
        assert ring.drain() == [u64(n) for n in lengths]
    assert obj.maps["arr"].lookup(u32(0)) == u64(4)
    per_cpu = obj.maps["pcpu"].lookup_percpu(u32(0)) or []
    assert sum(struct.unpack("<Q", v)[0] for v in per_cpu) == 4
    assert dict(obj.maps["h"].items()) == {u32(n): u64(n) for n in (60, 61, 100)}
    assert obj.maps["lru"].lookup(u32(100)) == u64(100)
    q = obj.maps["q"]
    assert [q.pop() for _ in lengths] == [u64(n) for n in lengths] and q.pop() is None


def test_ring_buffer_drains_only_new_records(obj: LoadedObject) -> None:
    prog = obj.programs["count"]
    with RingBufferReader(obj.maps["rb"]) as ring:
        assert ring.drain() == []
        for n in (20, 21, 22):
            prog.test_run(bytes(n))
        assert ring.drain() == [u64(20), u64(21), u64(22)]
        for n in (30, 31):
            prog.test_run(bytes(n))
        assert ring.drain() == [u64(30), u64(31)]
        assert ring.drain() == []
        # wrap around the 4 KiB ring several times (16-byte records)
        for n in range(600):
            prog.test_run(bytes(14 + n % 200))
            if n % 100 == 99:
                assert ring.drain() == [u64(14 + m % 200) for m in range(n - 99, n + 1)]
    with pytest.raises(EtranRuntimeError, match="closed"):
        ring.drain()


def test_ring_buffer_reader_needs_a_ringbuf(obj: LoadedObject) -> None:
    with pytest.raises(EtranRuntimeError, match="not a ringbuf"):
        RingBufferReader(obj.maps["h"])


def test_global_data_is_an_internal_map(kernel: None) -> None:
    body = """
@counter = internal global i64 0, section ".bss", align 8
define i32 @bump(ptr %ctx) section "xdp" {
  %old = atomicrmw add ptr @counter, i64 1 seq_cst
  ret i32 2
}
"""
    with load_object(build_object(body), "globals") as loaded:
        assert loaded.maps == {} and list(loaded.internal_maps) == [".bss"]
        bss = loaded.internal_maps[".bss"]
        assert (bss.type_name, bss.key_size, bss.value_size, bss.max_entries) == \
            ("array", 4, 8, 1)
        for _ in range(3):
            loaded.programs["bump"].test_run(bytes(64))
        assert bss.lookup(u32(0)) == u64(3)
    assert bss.closed

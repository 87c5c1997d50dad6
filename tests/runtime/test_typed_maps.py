"""Typed maps: every kind of map of a loaded transport read, written, iterated and emptied
through the transport's own struct declarations."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from etran.backend.emit import CompiledObject
from etran.ir.codec import format_value
from etran.pipeline import compile_source
from etran.runtime import EtranRuntimeError, load_object, possible_cpus
from etran.runtime.loader import LoadedObject
from etran.runtime.typed import TypedMap, program_of, typed_maps
from etran.testing.packets import udp_frame

pytestmark = pytest.mark.kernel

SOURCE = """
from etran.dsl import *


class Key(Struct):
    addr: be32
    port: u16


class Stats(Struct):
    packets: u64
    mac: Array[u8, 6]
    ok: bool


class Guarded(Struct):
    lock: SpinLock
    count: u32
    was_armed: u32
    t: Timer


class Bare(Struct):
    was_armed: u32
    t: Timer


class Event(Struct):
    length: u32


flows = HashMap(Key, Stats, max_entries=16)
slots = ArrayMap(Stats, max_entries=4)
per_cpu = PerCpuArray(Stats, max_entries=2)
guarded = HashMap(u32, Guarded, max_entries=4)
bare = HashMap(u32, Bare, max_entries=4)
backlog = Queue(Event, max_entries=8)
events = RingBuf(Event, max_entries=4096)
sockets = XskMap(max_entries=4)


@xdp
def touch(pkt: Packet) -> int:
    events.output(Event(length=pkt.len))
    g = guarded.get(1)
    b = bare.get(1)
    if g is None or b is None:
        return XDP_PASS
    if pkt.len == 100:
        g.t.start(10_000_000_000)
        b.t.start(10_000_000_000)
    else:
        g.was_armed = u32(g.t.cancel())
        b.was_armed = u32(b.t.cancel())
    return XDP_PASS


@timer(Guarded.t)
def guarded_fired(key: u32, g: Guarded) -> None:
    g.count += 1


@timer(Bare.t)
def bare_fired(key: u32, b: Bare) -> None:
    b.was_armed = 99
"""


@dataclass
class Loaded:
    maps: dict[str, TypedMap]
    loaded: LoadedObject

    def __getitem__(self, name: str) -> TypedMap:
        return self.maps[name]

    def run(self, frame: bytes) -> None:
        self.loaded.programs["touch"].test_run(frame)


@pytest.fixture(scope="module")
def compiled() -> CompiledObject:
    return compile_source(SOURCE, "typed.py")


@pytest.fixture
def obj(kernel: None, compiled: CompiledObject) -> Iterator[Loaded]:
    with load_object(compiled.elf, "typed") as loaded:
        typed = typed_maps(loaded, compiled.program)
        try:
            yield Loaded(typed, loaded)
        finally:
            for m in typed.values():
                m.close()


def test_hash_map_read_write_iterate_delete(obj: Loaded) -> None:
    flows = obj["flows"]
    key = {"addr": "10.0.0.1", "port": 80}
    assert flows.get(key) is None and key not in flows and len(flows) == 0
    flows.set(key, {"packets": 3, "mac": "02:00:00:00:00:01"})
    flows[{"addr": 0x0A000002, "port": 443}] = {"ok": True}
    assert flows[key] == {"packets": 3, "mac": [2, 0, 0, 0, 0, 1], "ok": False}
    assert {k["addr"]: v["ok"] for k, v in flows.items()} == \
        {0x0A000001: False, 0x0A000002: True}
    assert not flows.insert(key, {"packets": 9}) and flows[key]["packets"] == 3
    assert flows.replace(key, {"packets": 4}) and flows[key]["packets"] == 4
    assert not flows.replace({"addr": "10.0.0.9", "port": 1}, {})
    assert flows.delete(key) and not flows.delete(key)
    with pytest.raises(KeyError):
        del flows[key]
    assert list(flows) == [{"addr": 0x0A000002, "port": 443}]
    assert list(flows.values()) == [{"packets": 0, "mac": [0] * 6, "ok": True}]
    flows.clear()
    assert len(flows) == 0
    with pytest.raises(EtranRuntimeError, match="write map 'flows': flows value: Stats has no "
                       "field 'bytes'"):
        flows.set(key, {"bytes": 1})


def test_pretty_views_and_their_one_line_form(kernel: None, compiled: CompiledObject) -> None:
    with load_object(compiled.elf, "typed") as loaded:
        flows = typed_maps(loaded, compiled.program, pretty=True)["flows"]
        flows.set({"addr": "10.0.0.1", "port": 80}, {"mac": "02:00:00:00:00:01", "packets": 1})
        ((key, value),) = flows.items()
        assert key == {"addr": "10.0.0.1", "port": 80}
        assert format_value(value) == "{packets: 1, mac: 02:00:00:00:00:01, ok: False}"


def test_arrays_and_per_cpu_arrays(obj: Loaded) -> None:
    slots, per_cpu = obj["slots"], obj["per_cpu"]
    slots.set(2, {"packets": 7})
    assert len(slots) == 4 and [k for k, v in slots.items() if v["packets"]] == [2]
    with pytest.raises(EtranRuntimeError, match="array elements cannot be deleted"):
        slots.delete(2)
    with pytest.raises(EtranRuntimeError, match="array elements always exist"):
        slots.insert(1, {})
    slots.set(2, {})
    assert slots[2]["packets"] == 0
    cpus = possible_cpus()
    per_cpu.set(1, {"packets": 5})                      # one value for every CPU
    assert per_cpu[1] == [{"packets": 5, "mac": [0] * 6, "ok": False}] * cpus
    per_cpu.set(0, [{"packets": i} for i in range(cpus)])
    assert [v["packets"] for v in per_cpu[0]] == list(range(cpus))
    with pytest.raises(EtranRuntimeError, match="per-CPU values"):
        per_cpu.set(0, [{}] * (cpus + 1))


def test_queue_and_ring_buffer(obj: Loaded) -> None:
    backlog, events = obj["backlog"], obj["events"]
    assert backlog.pop() is None
    backlog.push({"length": 1})
    backlog.push({"length": 2})
    assert backlog.peek() == {"length": 1}
    assert [backlog.pop(), backlog.pop(), backlog.pop()] == [{"length": 1}, {"length": 2}, None]
    with pytest.raises(EtranRuntimeError, match="a Queue has no keys; use push/pop/peek"):
        backlog.get(0)
    assert events.drain() == []
    obj.run(udp_frame(bytes(20)))                       # each run records the frame's length
    obj.run(udp_frame(bytes(30)))
    assert events.drain() == [{"length": 62}, {"length": 72}]
    with pytest.raises(EtranRuntimeError, match="a RingBuf has no keys; use drain"):
        list(events.items())


def test_a_locked_value_is_written_in_place_and_its_timer_keeps_running(obj: Loaded) -> None:
    guarded, bare = obj["guarded"], obj["bare"]
    guarded.set(1, {"count": 5})
    bare.set(1, {})
    obj.run(bytes(100))                                 # arms both timers (10 s)
    guarded.set(1, {"count": 7})                        # BPF_F_LOCK: copied in place
    bare.set(1, {})                                     # a new element: its timer is gone
    obj.run(bytes(64))                                  # cancels: was one pending?
    assert guarded[1] == {"count": 7, "was_armed": 1}
    assert bare[1] == {"was_armed": 0}


def test_xsk_map_keys_and_mismatched_declarations(obj: Loaded,
                                                  compiled: CompiledObject) -> None:
    sockets = obj["sockets"]
    assert list(sockets.keys()) == [0, 1, 2, 3]          # slots, as in an array
    with pytest.raises(EtranRuntimeError, match="AF_XDP sockets cannot be read back"):
        sockets.get(0)
    with pytest.raises(EtranRuntimeError, match="list its slots with keys"):
        list(sockets.items())
    with pytest.raises(EtranRuntimeError, match="is not the declared one"):
        TypedMap(obj["flows"].map, compiled.program.map("slots"))


def test_program_of_reads_the_declarations_from_a_source_file(tmp_path: Path) -> None:
    path = tmp_path / "t.py"
    path.write_text(SOURCE)
    assert [m.name for m in program_of(path).maps] == [
        "flows", "slots", "per_cpu", "guarded", "bare", "backlog", "events", "sockets"]

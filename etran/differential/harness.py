"""Run a hook in the kernel and in the reference interpreter, and compare what they did.

`KernelHarness` loads a program built with observation probes (see
`etran.lower.observe`), sets the kernel's maps to a `MapStore`'s contents,
runs the hook with BPF_PROG_TEST_RUN on a chosen CPU, and reads back
everything the interpreter reports: action, packet, maps, redirect target,
ring-buffer records, timers started. `compare` lists the differences.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from etran.abi import ETH_HLEN, LOOPBACK_IFINDEX, MAX_TEST_FRAME
from etran.backend.emit import CompiledObject
from etran.interp.interpreter import Interpreter
from etran.interp.state import MapStore, RunInput, RunResult, TimerStarted
from etran.ir import tir
from etran.lower import observe as obs
from etran.runtime.loader import LoadedObject, RingBufferReader, XdpContext, load_object, possible_cpus


class RunError(Exception):
    """An input the kernel cannot run (too short, too long); the message says why."""


class KernelHarness:
    """A compiled program loaded into the kernel, ready to run hooks on inputs."""

    def __init__(self, compiled: CompiledObject) -> None:
        if not compiled.observe:
            raise ValueError("KernelHarness needs a program compiled with observe=True")
        self.compiled = compiled
        self.program = compiled.program
        self.loaded: LoadedObject = load_object(compiled.elf, name=self.program.name[:15] or "etran")
        self.ncpu = possible_cpus()
        self._rings: dict[str, RingBufferReader] = {}
        self._known: dict[str, Any] = {}   # each map's contents as last written or read
        self._affinity: set[int] | None = None
        self._pinned: int | None = None
        try:
            for m in self.program.maps:
                if m.kind == "RingBuf":
                    self._rings[m.name] = RingBufferReader(self.loaded.maps[m.name])
        except BaseException:
            self.close()
            raise

    def _pin(self, cpu: int) -> None:
        """Run on `cpu` (per-CPU maps and cpu_id() depend on it); restored by close()."""
        if self._pinned == cpu:
            return
        if self._affinity is None:
            self._affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {cpu})
        self._pinned = cpu

    def close(self) -> None:
        if self._affinity is not None:
            os.sched_setaffinity(0, self._affinity)
            self._affinity, self._pinned = None, None
        for r in self._rings.values():
            r.close()
        self._rings.clear()
        self.loaded.close()

    def __enter__(self) -> KernelHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- maps
    def write_maps(self, store: MapStore) -> None:
        """Make the kernel's maps hold exactly `store`'s contents.

        Only what differs from the kernel's last known contents is written: a
        fuzzing loop usually changes one entry per run, and a map update is a syscall.
        A DevMap's values are interface indexes the kernel resolves when they are
        written, so every one must name an interface of this network namespace
        (checked before anything is written: `RunError` otherwise).
        """
        for m in self.program.maps:
            if m.kind == "DevMap":
                have_dev = self._known.get(m.name) or {}
                for k, v in _raw_contents(m, store[m.name]).items():
                    if have_dev.get(k) != v:
                        _check_devmap_slot(m, k, v)
        for m in self.program.maps:
            live = self.loaded.maps[m.name]
            st = store[m.name]
            if m.kind == "RingBuf":
                continue  # drained after every run
            if m.kind == "XskMap":
                if st.entries:
                    raise RunError(f"XskMap `{m.name}` slots hold AF_XDP sockets, which a test "
                                   "run cannot create: keep it empty (redirects then fall back)")
                continue  # never written, so always empty
            want = _raw_contents(m, st)
            have = self._known.get(m.name)
            if m.kind == "Queue":
                if have != want:
                    while live.pop() is not None:
                        pass
                    for v in want:
                        live.push(v)
                continue
            if have is None:
                if m.is_array:
                    have = dict.fromkeys(live.keys())  # unknown contents: rewrite all
                else:
                    live.clear()
                    have = {}
            for k in have.keys() - want.keys():
                if m.is_array:
                    live.update(k, _zero_value(m, self.ncpu))
                else:
                    live.delete(k)
            for k, v in want.items():
                if have.get(k) != v:
                    live.update(k, _encode_value(m, v))

    def read_maps(self) -> MapStore:
        store = MapStore(self.program, self.ncpu)
        for m in self.program.maps:
            live = self.loaded.maps[m.name]
            if m.kind in ("RingBuf", "XskMap"):  # sockets cannot be read back out of an XskMap
                continue
            if m.kind == "Queue":
                items = []
                while (v := live.pop()) is not None:
                    items.append(bytes(v))
                for v in items:
                    live.push(v)
                store[m.name].queue = items
            else:
                for k, v in live.items():
                    if m.kind == "DevMap":
                        store.set_raw(m.name, k, int.from_bytes(v[:4], "little"))
                    elif m.is_percpu:
                        per = live.lookup_percpu(k) or []
                        store.set_raw(m.name, k, [bytes(x[:m.value_size]) for x in per])
                    elif not (m.is_array and not any(v)):
                        store.set_raw(m.name, k, v)
            self._known[m.name] = _raw_contents(m, store[m.name])
        return store

    # ---------------------------------------------------------------- runs
    def run_timer(self, handler: str, key: bytes, inp: RunInput) -> RunResult:
        """Fire a @timer handler for the entry with `key`, as the kernel's timer would."""
        prog = self.loaded.programs.get(_fire_name(handler))
        if prog is None:
            raise RunError(f"`{handler}` cannot be fired on demand (not a @timer handler, or "
                           f"its map's key is over {obs.MAX_KEY} bytes)")
        result = self._execute(prog, inp, key)
        result.action = None
        result.packet = inp.packet
        return result

    def run(self, hook: str, inp: RunInput) -> RunResult:
        if len(inp.packet) < ETH_HLEN:
            raise RunError(f"an XDP frame is at least {ETH_HLEN} bytes; this packet has "
                           f"{len(inp.packet)}")
        if len(inp.packet) > MAX_TEST_FRAME:
            raise RunError(f"a test frame is at most {MAX_TEST_FRAME} bytes; this packet has "
                           f"{len(inp.packet)}")
        return self._execute(self.loaded.programs[hook], inp)

    def _execute(self, prog: Any, inp: RunInput, key: bytes = b"") -> RunResult:
        store = inp.maps if inp.maps is not None else MapStore(self.program, self.ncpu)
        self.write_maps(store)
        self.loaded.maps[obs.MAP_NAME].update(
            bytes(4), obs.encode_inputs(inp.now_ns, inp.random_u32, key))
        self._pin(inp.cpu)
        res = prog.test_run(inp.packet, ctx=XdpContext(rx_queue_index=inp.rx_queue,
                                                       ingress_ifindex=inp.ifindex))
        maps = self.read_maps()
        raw = self.loaded.maps[obs.MAP_NAME].lookup(bytes(4)) or bytes(obs.SIZE)
        seen = obs.decode(raw)
        names = [m.name for m in self.program.maps]
        redirect = (names[seen.redirect[0]], seen.redirect[1]) if seen.redirect else None
        timers = [TimerStarted(names[mi], None, _field_name(self.program, names[mi], off), d)
                  for mi, off, d in seen.timers]
        rings = {n: r.drain() for n, r in self._rings.items()}
        rings = {n: v for n, v in rings.items() if v}
        return RunResult(res.retval, res.data, maps, redirect, rings, timers,
                         seen.timer_count if seen.timer_count > len(timers) else None)


def _fire_name(handler: str) -> str:
    return handler + obs.FIRE_SUFFIX


def _raw_contents(m: Any, st: Any) -> Any:
    """A map's contents in a comparable form: raw key -> raw value(s); arrays without zeros."""
    if m.kind == "Queue":
        return [bytes(v) for v in st.queue]
    out: dict[bytes, Any] = {}
    for k, v in st.entries.items():
        if isinstance(v, list):
            vals = tuple(bytes(x) for x in v)
            if m.is_array and not any(any(x) for x in vals):
                continue
            out[bytes(k)] = vals
        elif isinstance(v, (bytes, bytearray)):
            if m.is_array and not any(v):
                continue
            out[bytes(k)] = bytes(v)
        else:
            out[bytes(k)] = v
    return out


def _check_devmap_slot(m: Any, key: bytes, ifindex: Any) -> None:
    """A DevMap slot the kernel would take: in range, holding an existing interface's index
    (the kernel refuses unknown ones, and an ifindex of 0 empties the slot instead)."""
    slot = int.from_bytes(key, "little")
    where = f"DevMap `{m.name}` slot {slot}"
    if slot >= m.max_entries:
        raise RunError(f"{where}: the map has slots 0 to {m.max_entries - 1}")
    if not isinstance(ifindex, int) or not 0 < ifindex < 1 << 32:
        raise RunError(f"{where}: {ifindex!r} is not an interface index; a slot holds the "
                       f"index of an interface (loopback is {LOOPBACK_IFINDEX}), or is left out")
    try:
        socket.if_indextoname(ifindex)
    except OSError:
        raise RunError(f"{where}: no interface has index {ifindex} in this network namespace; "
                       f"use an existing one (`ip link` lists them; loopback is "
                       f"{LOOPBACK_IFINDEX})") from None


def _encode_value(m: Any, v: Any) -> bytes:
    if m.kind == "DevMap":
        return int(v).to_bytes(4, "little")
    if isinstance(v, tuple):
        return b"".join(x.ljust((len(x) + 7) // 8 * 8, b"\0") for x in v)
    return bytes(v)


def _zero_value(m: Any, ncpu: int) -> bytes:
    if m.is_percpu:
        return bytes((m.value_size + 7) // 8 * 8 * ncpu)
    return bytes(m.value_size)


def _field_name(program: tir.Program, map_name: str, offset: int) -> str:
    value = program.map(map_name).value
    for f in value.fields if value else []:
        if f.offset == offset:
            return f.name
    return f"+{offset}"


@dataclass(frozen=True, slots=True)
class Difference:
    what: str
    kernel: Any
    interpreter: Any

    def __str__(self) -> str:
        return f"{self.what}: kernel {_show(self.kernel)}, interpreter {_show(self.interpreter)}"


def _show(v: Any) -> str:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex() or "(empty)"
    return repr(v)


def compare(kernel: RunResult, interp: RunResult) -> list[Difference]:
    """Everything observable that differs between a kernel run and an interpreter run."""
    out: list[Difference] = []
    if kernel.action != interp.action:
        out.append(Difference("action", kernel.action, interp.action))
    if kernel.packet != interp.packet:
        what = "packet" if len(kernel.packet) == len(interp.packet) else "packet length"
        out.append(Difference(what, kernel.packet, interp.packet))
    ks, is_ = kernel.maps.snapshot(), interp.maps.snapshot()
    for name in sorted(set(ks) | set(is_)):
        a, b = ks.get(name), is_.get(name)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                if a.get(k) != b.get(k):
                    out.append(Difference(f"map {name}[{k.hex()}]", a.get(k), b.get(k)))
        else:
            out.append(Difference(f"map {name}", a, b))
    if kernel.redirect != interp.redirect:
        out.append(Difference("redirect", kernel.redirect, interp.redirect))
    if kernel.ringbuf != interp.ringbuf:
        out.append(Difference("ring buffer", kernel.ringbuf, interp.ringbuf))
    kt = [(t.map, t.field, t.delay_ns) for t in kernel.timers]
    it = [(t.map, t.field, t.delay_ns) for t in interp.timers]
    k_total = kernel.timer_count if kernel.timer_count is not None else len(kt)
    i_total = interp.timer_count if interp.timer_count is not None else len(it)
    # a kernel run records the first obs.MAX_TIMERS starts and counts them all
    if kt != it[:obs.MAX_TIMERS] or k_total != i_total:
        out.append(Difference("timers started", kt if k_total == len(kt) else (k_total, kt),
                              it if i_total == len(it) else (i_total, it)))
    return out


def run_both(runner: KernelHarness, hook: str, inp: RunInput) -> tuple[RunResult, RunResult, list[Difference]]:
    k = runner.run(hook, inp)
    i = Interpreter(runner.program).run(hook, _with_cpus(inp, runner))
    return k, i, compare(k, i)


def _with_cpus(inp: RunInput, runner: KernelHarness) -> RunInput:
    if inp.maps is not None and inp.maps.ncpu != runner.ncpu:
        raise ValueError("the MapStore must be built with ncpu=runner.ncpu")
    if inp.maps is None:
        from dataclasses import replace
        return replace(inp, maps=MapStore(runner.program, runner.ncpu))
    return inp

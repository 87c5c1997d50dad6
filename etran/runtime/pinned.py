"""A host of a run `etran up` started, opened by a transport's library from another process
(`etran nc`, `etran rpc`): the host's interface and neighbours from the run's record, the
transport's maps and the programs the runtime runs on demand from the run's pins, and
the pieces a library owns and closes in order."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from etran.abi import PROG_TYPE_XDP
from etran.runtime.loader import Program
from etran.runtime.topology import Host

_compiled: dict[tuple[str, bool], Any] = {}


def compiled_transport(path: str | os.PathLike[str], native_egress: bool = False) -> Any:
    """A transport's data path compiled once per process (checking the transports replays
    the verifier over their loops, a second or two): the plain build, or the native build
    whose @egress runs on the far end of the stack's veth (etran.runtime.native), compiled
    from the same checked program."""
    key = os.fspath(path)
    if (key, False) not in _compiled:
        from etran.pipeline import compile_file  # the compiler only where a stack starts
        _compiled[key, False] = compile_file(key)
    if native_egress and (key, True) not in _compiled:
        from etran.pipeline import compile_program
        _compiled[key, True] = compile_program(_compiled[key, False].program,
                                               native_egress=True)
    return _compiled[key, native_egress]


@dataclass
class PinnedHost:
    host: Host
    neighbours: dict[str, bytes]               # address -> MAC of every host of the run
    maps: dict[str, Any]                       # name -> etran.runtime.maps.Map
    programs: dict[str, Program]
    owned: list[Any] = field(default_factory=list)   # what to close with the library
    base: str = ""                             # the host's pin directory


def open_pinned_host(record: Any, host: str, program: Any,
                     program_names: tuple[str, ...]) -> PinnedHost:
    """Host `host` of run `record`: every map `program` (the transport's checked program)
    declares, and the pinned programs `program_names`. Nothing stays open on failure."""
    from etran.runtime import netns
    from etran.runtime.runs import reachable_pin_dir
    info = record.hosts[host]
    me = Host(host, info["netns"], netns.interface(info["netns"], info["ifname"]),
              info["ip"], info["mac"])
    neighbours = {h["ip"]: bytes.fromhex(h["mac"].replace(":", ""))
                  for h in record.hosts.values()}
    base = os.path.join(reachable_pin_dir(record), host)
    owned: list[Any] = []
    try:
        maps = {m.name: _pinned_map(os.path.join(base, "maps", m.name), owned)
                for m in program.maps}
        programs = {name: _pinned_program(os.path.join(base, "progs", name), owned)
                    for name in program_names}
    except BaseException:
        close_all(owned)
        raise
    return PinnedHost(me, neighbours, maps, programs, owned, base)


def _pinned_map(path: str, owned: list[Any]) -> Any:
    """The map pinned at `path`, owned (closed with the library)."""
    from etran.runtime.maps import Map
    m = Map.from_pinned(path)
    owned.append(m)
    return m


def _pinned_program(path: str, owned: list[Any]) -> Program:
    """The XDP program pinned at `path`, its fd owned (closed with the library)."""
    from etran.runtime.system import get_pinned
    fd = get_pinned(path)
    owned.append(PinnedFd(fd))
    return Program(os.path.basename(path), "xdp", PROG_TYPE_XDP, fd, "")


NATIVE_DIR = "native"   # <host>/native/: the native build's @egress programs and its uplink


def pin_native_egress(native: Any, directory: str, program_names: list[str]) -> None:
    """Pin what the native path needs of `native` (a native build loaded on a host's maps,
    etran.lower.native): its @egress programs and the map they redirect out through, under
    `<host pin dir>/native/` (`etran up` does this, so applications compile nothing)."""
    from etran.lower.native import UPLINK_MAP
    path = os.path.join(directory, NATIVE_DIR)
    os.makedirs(path, exist_ok=True)
    for name in program_names:
        native.programs[name].pin(os.path.join(path, name))
    native.maps[UPLINK_MAP].pin(os.path.join(path, UPLINK_MAP))


def use_native_egress(pinned: PinnedHost, build: Callable[[], bytes], program_name: str,
                      object_name: str) -> None:
    """Put the native build's @egress program `program_name`, and the map it redirects out
    through, in `pinned` in place of the pinned plain one: those `etran up` pinned under
    `native/`, or else the native build `build()` makes (etran.lower.native), loaded here on
    the run's own maps. Closed with the rest (all of `pinned` is closed if this fails)."""
    try:
        _use_native_egress(pinned, build, program_name, object_name)
    except BaseException:
        close_all(pinned.owned)
        raise


def _use_native_egress(pinned: PinnedHost, build: Callable[[], bytes], program_name: str,
                       object_name: str) -> None:
    from etran.lower.native import UPLINK_MAP
    from etran.runtime.loader import load_object
    path = os.path.join(pinned.base, NATIVE_DIR)
    if os.path.exists(os.path.join(path, program_name)):
        pinned.maps[UPLINK_MAP] = _pinned_map(os.path.join(path, UPLINK_MAP), pinned.owned)
        pinned.programs[program_name] = _pinned_program(os.path.join(path, program_name),
                                                        pinned.owned)
        return
    native = load_object(build(), object_name[:15],
                         reuse={name: m.fd for name, m in pinned.maps.items()})
    pinned.owned.append(native)
    pinned.programs[program_name] = native.programs[program_name]
    pinned.maps[UPLINK_MAP] = native.maps[UPLINK_MAP]


class PinnedFd:
    """A file descriptor to close with the library (a pinned program's)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Stopper:
    """A pump (etran.runtime.hooks) among the parts a library closes: closing stops it."""

    def __init__(self, pump: Any) -> None:
        self.pump = pump

    def close(self) -> None:
        self.pump.stop()


class Detacher:
    """The ingress a library attached to a host of a topology, among the parts it closes:
    closing detaches it, so that the host's own stack has the interface back (a program left
    there would take segments for connections nobody serves any more)."""

    def __init__(self, topology: Any, host: str) -> None:
        self.topology = topology
        self.host = host

    def close(self) -> None:
        self.topology.detach(self.host)


def close_all(parts: list[Any]) -> None:
    """Close every part in order; the first failure is raised once all were closed."""
    errors = []
    for part in parts:
        try:
            part.close()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]

"""Fixtures for netns tests: real namespaces, veths, XDP and AF_XDP on the running kernel.

Every test here must leave behind nothing of its own: no namespace, veth, pin directory or
state file of a run this process created, and no open file descriptor (`no_leftovers`).
Objects of other processes' runs (a parallel test session) are not this test's business.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from etran.backend.emit import CompiledObject
from etran.pipeline import compile_file
from etran.runtime import attach, netns, runs
from etran.testing.packets import eth, ipv4, udp

HERE = Path(__file__).parent


def open_fds() -> dict[int, str]:
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:
            pass
    return fds


def foreign_run_ids() -> set[str]:
    """Runs owned by other live processes (or persistent ones made by other processes)."""
    return {r.run_id for r in runs.list_runs() if r.pid != os.getpid() and not r.is_orphan()}


def project_objects() -> set[str]:
    found = runs.find_objects()
    names = set(found.namespaces) | {f"link {n}" for n in found.links} | set(found.pins)
    try:
        names |= {os.path.join(runs.STATE_DIR, f) for f in os.listdir(runs.STATE_DIR)}
    except FileNotFoundError:
        pass
    return names


def run_id_in(name: str) -> str:
    """The run id in a namespace name, pin directory or state file path."""
    base = os.path.basename(name).removesuffix(".json")
    return runs.run_id_of(base) or base


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    before_fds = open_fds()
    before = project_objects()
    yield
    foreign = foreign_run_ids()
    leaked = sorted(n for n in project_objects() - before if run_id_in(n) not in foreign)
    assert not leaked, f"left behind: {leaked}"
    after_fds = open_fds()
    kept = netns.thread_homes()        # each thread's own namespace, opened once
    fd_leaks = {fd: t for fd, t in after_fds.items() if before_fds.get(fd) != t and fd not in kept}
    assert not fd_leaks, f"file descriptors leaked: {fd_leaks}"


_compiled: dict[str, CompiledObject] = {}


def compiled(name: str) -> CompiledObject:
    """A test transport from this directory, compiled once per session."""
    if name not in _compiled:
        _compiled[name] = compile_file(HERE / name)
    return _compiled[name]


def frame(src: object, dst: object, sport: int, dport: int, payload: bytes) -> bytes:
    """An Ethernet/IPv4/UDP frame from host ``src`` to host ``dst`` with full checksums."""
    return eth(ipv4(udp(payload, sport=sport, dport=dport, src=src.ip, dst=dst.ip),  # type: ignore[attr-defined]
                    src=src.ip, dst=dst.ip), src=src.mac, dst=dst.mac)  # type: ignore[attr-defined]


def u64s(raw: bytes | None) -> tuple[int, ...]:
    assert raw is not None
    return struct.unpack(f"<{len(raw) // 8}Q", raw)


def nothing_attached(namespace: str) -> bool:
    return attach.attached_program_ids(namespace) == {}


def started_run(up_stdout: str | bytes) -> runs.RunRecord:
    """The run `etran up` said it started (its first line names it): found by its id, not
    by what other runs exist, so a test session beside this one cannot confuse it."""
    text = up_stdout.decode() if isinstance(up_stdout, bytes) else up_stdout
    match = re.search(r"etran: run (\S+) is up", text)
    assert match, text
    record = runs.find_run(match.group(1))
    assert record is not None, f"no state file for run {match.group(1)}"
    return record

"""Runs: what one process created in the kernel, written down so that it can always be removed.

A *run* is one topology brought up by one process. It has a random id (six hex digits) that
appears in every name it creates, so parallel runs never collide:

* network namespaces ``etran-<id>-<host>`` (every veth lives inside one of them);
* a bpffs directory ``/sys/fs/bpf/etran/<id>/`` for pinned links, programs and maps;
* a state file ``/run/etran/<id>.json`` saying which process owns the run and what it made;
* for a persistent run with per-host daemons (``etran up`` of etran's TCP or Homa), a
  directory ``/run/etran/<id>/`` with their sockets and logs, the daemons listed in the
  state file.

The state file is written *before* anything it lists is created, so a process killed at any
point leaves enough behind for :func:`teardown_all` (``etran down``) to find and remove
everything; names that match ``etran-*`` without a state file are orphans by definition.

Within a live process a run is torn down by its context manager, or at interpreter exit, or
on SIGTERM/SIGHUP (turned into ``SystemExit`` so ``with`` blocks unwind). A *persistent* run
(``etran up``) is meant to outlive its process and is removed only by ``etran down``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from types import FrameType, TracebackType
from typing import Any

from etran.runtime import netns
from etran.runtime.errors import EtranRuntimeError, NotSupported

PREFIX = "etran-"
STATE_DIR = os.environ.get("ETRAN_STATE_DIR", "/run/etran")
BPFFS = "/sys/fs/bpf"
PIN_ROOT = os.path.join(BPFFS, "etran")


@dataclass
class RunRecord:
    """The contents of a state file (plain JSON data)."""

    run_id: str
    pid: int
    pid_start: int
    created: float
    kind: str
    persistent: bool = False
    source: str = ""
    namespaces: list[str] = field(default_factory=list)
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    attached: list[dict[str, Any]] = field(default_factory=list)
    # processes that serve the run's hosts (`etran.runtime.hostd`): host, pid, pid_start,
    # what (the transport: "tcp" or "homa")
    daemons: list[dict[str, Any]] = field(default_factory=list)

    @property
    def state_file(self) -> str:
        return os.path.join(STATE_DIR, f"{self.run_id}.json")

    @property
    def run_dir(self) -> str:
        """Where the run's daemons keep their sockets and logs."""
        return os.path.join(STATE_DIR, self.run_id)

    @property
    def pin_dir(self) -> str:
        return os.path.join(PIN_ROOT, self.run_id)

    def owner_alive(self) -> bool:
        """True while the process that created the run is still running (same pid, same
        start time, so a recycled pid does not count)."""
        return _start_time(self.pid) == self.pid_start

    def is_orphan(self) -> bool:
        """Its owner died without tearing it down (a persistent run is never an orphan)."""
        return not self.persistent and not self.owner_alive()

    def save(self) -> None:
        os.makedirs(STATE_DIR, mode=0o755, exist_ok=True)
        tmp = self.state_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(asdict(self), f, indent=1, sort_keys=True)
        os.replace(tmp, self.state_file)  # never a half-written state file

    @classmethod
    def load(cls, file: str) -> RunRecord:
        with open(file, encoding="utf-8") as f:
            data = json.load(f)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _start_time(pid: int) -> int:
    """Field 22 of /proc/PID/stat (clock ticks after boot), or -1 if there is no such pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return -1
    return int(stat.rsplit(")", 1)[1].split()[19])


def namespace_name(run_id: str, host: str) -> str:
    return f"{PREFIX}{run_id}-{host}"


def run_id_of(name: str) -> str | None:
    """The run id inside a name such as ``etran-3fa9c2-a``, or None."""
    if not name.startswith(PREFIX):
        return None
    rest = name[len(PREFIX):].split("-", 1)[0]
    return rest if len(rest) == 6 and all(c in "0123456789abcdef" for c in rest) else None


# --------------------------------------------------------------------------- live runs

class Run:
    """One run's bookkeeping in the process that owns it.

    Callers note every namespace before creating it and register cleanup callbacks for what
    they own (sockets, links); :meth:`close` runs the callbacks newest first, then removes the
    namespaces, the pin directory and the state file. Idempotent; also runs at exit.
    """

    def __init__(self, kind: str, *, source: str = "", persistent: bool = False) -> None:
        self.record = RunRecord(_new_run_id(), os.getpid(), _start_time(os.getpid()),
                                time.time(), kind, persistent, source)
        self._callbacks: list[tuple[str, Callable[[], object]]] = []
        self._closed = False
        try:
            self.record.save()
        except PermissionError as exc:
            raise NotSupported("root", f"recording the run in {STATE_DIR} was refused; run as "
                               "root", "start a run") from exc
        _register(self)

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def pin_dir(self) -> str:
        return self.record.pin_dir

    @property
    def closed(self) -> bool:
        return self._closed

    def namespace(self, host: str) -> str:
        """Note (and save) the namespace for ``host`` before it is created; return its name."""
        name = namespace_name(self.run_id, host)
        if name not in self.record.namespaces:
            self.record.namespaces.append(name)
            self.record.save()
        return name

    def save(self) -> None:
        self.record.save()

    def callback(self, what: str, fn: Callable[[], object]) -> None:
        """Run ``fn`` at close, before namespaces are removed (newest first)."""
        self._callbacks.append((what, fn))

    def close(self) -> list[str]:
        """Tear down everything; returns what failed to go away (empty when all is clean)."""
        if self._closed:
            return []
        self._closed = True
        _unregister(self)
        problems: list[str] = []
        while self._callbacks:
            what, fn = self._callbacks.pop()
            try:
                fn()
            except Exception as exc:  # keep going: the namespaces must go regardless
                problems.append(f"{what}: {exc}")
        problems += remove_run(self.record)
        return problems

    def detach(self) -> None:
        """Leave everything in place for ``etran down`` (persistent runs, ``etran up``)."""
        self.record.persistent = True
        self.record.save()
        self._callbacks.clear()
        self._closed = True
        _unregister(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _new_run_id() -> str:
    taken = {run_id_of(n) for n in netns.list_names(PREFIX)}
    while True:
        run_id = secrets.token_hex(3)
        if run_id not in taken and not os.path.exists(os.path.join(STATE_DIR, run_id + ".json")):
            return run_id


_live: dict[int, Run] = {}
_live_lock = threading.Lock()
_hooks_installed = False


def _register(run: Run) -> None:
    global _hooks_installed
    with _live_lock:
        _live[id(run)] = run
        if not _hooks_installed:
            _hooks_installed = True
            atexit.register(_close_all_at_exit)
            _install_signal_handlers()


def _unregister(run: Run) -> None:
    with _live_lock:
        _live.pop(id(run), None)


def _close_all_at_exit() -> None:
    with _live_lock:
        runs = list(_live.values())
    for run in reversed(runs):
        if run.record.pid == os.getpid():  # not in a forked child that inherited the hook
            run.close()


_handler_pid = 0  # the process that installed the handlers


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    if os.getpid() != _handler_pid:
        # A forked child (pyroute2 and multiprocessing fork helpers) inherited the handler;
        # it owns no run, so it dies of the signal as it would have without us.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise SystemExit(128 + signum)  # unwinds `with` blocks, then atexit closes the rest


def _install_signal_handlers() -> None:
    """SIGTERM and SIGHUP exit through Python (so cleanup runs) unless someone else already
    handles them. SIGINT already raises KeyboardInterrupt. Only the main thread may do this."""
    global _handler_pid
    if threading.current_thread() is not threading.main_thread():
        return
    _handler_pid = os.getpid()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _on_signal)


# --------------------------------------------------------------------------- teardown

def remove_run(record: RunRecord) -> list[str]:
    """Stop a run's daemons, remove its namespaces, pins, state file and run directory;
    returns what could not be removed."""
    problems: list[str] = stop_daemons(record)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(record.run_dir)
    for name in record.namespaces:
        try:
            netns.remove(name)
        except EtranRuntimeError as exc:
            problems.append(str(exc))
    problems += remove_pins(record.pin_dir)
    with contextlib.suppress(OSError):  # only when no other run still pins something
        os.rmdir(PIN_ROOT)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(record.state_file)
    return problems


def stop_daemons(record: RunRecord, grace: float = 10.0) -> list[str]:
    """SIGTERM each of the run's daemons that still runs (the same pid and start time), wait
    up to `grace` seconds for them to finish (closing their connections), then SIGKILL."""
    alive = [d for d in record.daemons if _start_time(d["pid"]) == d["pid_start"]]
    for daemon in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(daemon["pid"], signal.SIGTERM)
    deadline = time.monotonic() + grace
    problems = []
    for daemon in alive:
        while _start_time(daemon["pid"]) == daemon["pid_start"] and time.monotonic() < deadline:
            time.sleep(0.02)
        if _start_time(daemon["pid"]) == daemon["pid_start"]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(daemon["pid"], signal.SIGKILL)
            problems.append(f"daemon of host {daemon['host']} (pid {daemon['pid']}) did not "
                            f"stop within {grace:.0f} s: killed")
    return problems


def this_host() -> tuple[RunRecord | None, str]:
    """The run and host whose namespace this process is in (a command started with `ip
    netns exec etran-<id>-<host>`), or (None, "")."""
    mine = os.stat("/proc/self/ns/net").st_ino
    for record in list_runs():
        for name, info in record.hosts.items():
            try:
                if os.stat(netns.path(info["netns"])).st_ino == mine:
                    return record, name
            except OSError:
                continue
    return None, ""


def remove_pins(directory: str) -> list[str]:
    """Unpin everything under ``directory`` on bpffs (unpinning a link detaches it once no
    fd holds it)."""
    if not os.path.isdir(directory):
        return []
    failures: list[str] = []
    for parent, dirs, files in os.walk(directory, topdown=False):
        for name, remove in [(f, os.unlink) for f in files] + [(d, os.rmdir) for d in dirs]:
            try:
                remove(os.path.join(parent, name))
            except FileNotFoundError:
                pass
            except OSError as exc:
                failures.append(f"unpin {os.path.join(parent, name)}: {exc.strerror}")
    try:
        os.rmdir(directory)
    except FileNotFoundError:
        pass
    except OSError as exc:
        failures.append(f"remove {directory}: {exc.strerror}")
    return failures


def find_run(run_id: str) -> RunRecord | None:
    """The run with id ``run_id``, if its state file is there."""
    return next((r for r in list_runs() if r.run_id == run_id), None)


def reachable_pin_dir(record: RunRecord) -> str:
    """Where this process can open the run's pins. `ip netns exec` gives the command a mount
    namespace of its own with a fresh /sys, where /sys/fs/bpf is an empty mount point; the
    pins are still reachable through the root of a process outside it (its parent, say)."""
    if os.path.exists(record.pin_dir):
        return record.pin_dir
    pids = [os.getppid()] + sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    for pid in pids:
        candidate = f"/proc/{pid}/root{record.pin_dir}"
        try:
            if os.path.exists(candidate):
                return candidate
        except OSError:
            continue
    return record.pin_dir


def list_runs() -> list[RunRecord]:
    """Every run with a state file, oldest first (unreadable state files are skipped)."""
    records = []
    try:
        files = [f for f in os.listdir(STATE_DIR) if f.endswith(".json")]
    except FileNotFoundError:
        return []
    for file in files:
        try:
            records.append(RunRecord.load(os.path.join(STATE_DIR, file)))
        except (OSError, ValueError, TypeError):
            continue
    return sorted(records, key=lambda r: r.created)


@dataclass
class Leftovers:
    """What ``etran-*`` objects exist outside any state file, or belong to a given run."""

    namespaces: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # in the root namespace
    pins: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.namespaces or self.links or self.pins)


def _in_project_namespace(names: list[str]) -> bool:
    """Whether this thread is inside one of the project's namespaces `names` (a command
    started with `ip netns exec etran-...`): the `etran-*` links it sees are then that
    namespace's own, not leftovers of the machine's."""
    try:
        here = os.stat("/proc/thread-self/ns/net").st_ino
    except OSError:
        return False
    for name in names:
        with contextlib.suppress(OSError):
            if os.stat(netns.path(name)).st_ino == here:
                return True
    return False


def find_objects(run_id: str | None = None) -> Leftovers:
    """The project's namespaces, root-namespace links and pin directories (all of them, or
    only those of ``run_id``)."""
    def mine(name: str) -> bool:
        return run_id is None or run_id_of(name) == run_id or name == run_id

    found = Leftovers()
    names = netns.list_names(PREFIX)
    found.namespaces = [n for n in names if mine(n)]
    if run_id is None and not _in_project_namespace(names):
        with netns.netlink(None) as ipr:
            found.links = sorted(str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()
                                 if str(link.get_attr("IFLA_IFNAME")).startswith(PREFIX))
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        found.pins = sorted(os.path.join(PIN_ROOT, d) for d in os.listdir(PIN_ROOT) if mine(d))
    return found


def teardown_all(*, orphans_only: bool = False) -> list[str]:
    """Remove every namespace, root-namespace link and pin directory named ``etran-*``
    (what ``etran down`` does), even those of a process that was killed.

    With ``orphans_only`` the runs of live processes and persistent runs are kept: only runs
    whose owner died, and names no state file accounts for, are removed. Returns one line per
    thing removed; raises :class:`EtranRuntimeError` if something would not go away.
    """
    removed: list[str] = []
    problems: list[str] = []
    kept: set[str] = set()
    with _live_lock:  # this process's own live runs go through their context managers
        own = {run.run_id: run for run in _live.values()}
    for record in list_runs():
        if orphans_only and not record.is_orphan():
            kept.add(record.run_id)
            continue
        if record.run_id in own:
            problems += own[record.run_id].close()
        else:
            problems += remove_run(record)
        removed.append(f"run {record.run_id} ({record.kind}, pid {record.pid})")
    leftovers = find_objects()
    for name in leftovers.namespaces:
        run_id = run_id_of(name)
        if run_id in kept or (orphans_only and run_id is None):
            continue  # a live run's, or not named by a run (only a full teardown takes it)
        try:
            if netns.remove(name):
                removed.append(f"namespace {name}")
        except EtranRuntimeError as exc:
            problems.append(str(exc))
    if not orphans_only and leftovers.links:
        with netns.netlink(None) as ipr:
            for link in leftovers.links:
                try:
                    ipr.link("del", ifname=link)
                    removed.append(f"link {link}")
                except Exception as exc:  # pyroute2 raises NetlinkError (an OSError subclass)
                    problems.append(f"delete link {link}: {exc}")
    for pin_dir in leftovers.pins:
        if os.path.basename(pin_dir) in kept:
            continue
        failures = remove_pins(pin_dir)
        problems += failures
        if not failures:
            removed.append(f"pins {pin_dir}")
    with contextlib.suppress(OSError):
        os.rmdir(PIN_ROOT)
    if problems:
        raise EtranRuntimeError("tear down etran objects", "; ".join(problems))
    return removed

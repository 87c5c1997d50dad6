"""A host's daemon: the one process of a host of a run that holds a transport's data path.

eTran keeps transport state out of the applications' reach: the maps and programs belong to
a daemon, and an application holds only its own socket. `etran up` of etran's TCP or Homa
starts one daemon per host (`etran hostd`, inside the host's namespace, listed in the run's
state file, stopped by `etran down`). It runs the host's stack from the run's pins and
serves the applications of the host over a Unix socket,
``/run/etran/<run>/<host>.<transport>.sock``; each transport says what it speaks there
(`etran.tcp.hostd`, `etran.homa.hostd`) and gives applications their side
(`etran.tcp.app`, `etran.homa.app`).

An application needs no capability: with `kernel.unprivileged_bpf_disabled` set, as on any
distribution kernel, it cannot create BPF objects or packet sockets, the pins are not in
its mount namespace, and another process's root is closed to it; egress runs on the
daemon's veth pair, so nothing it sends leaves without passing the transport's `@egress`.

`etran hostd` supervises the daemon proper (`--worker`, a child that dies with it): a
daemon that dies is started again, at most RESTARTS times in RESTART_WINDOW seconds, and the
new one's stack clears what the dead one left in the maps.

This module imports no data path: applications use its client half.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from etran.runtime import runs
from etran.runtime.errors import EtranRuntimeError

TRANSPORTS = {"tcp": "etran/transports/tcp.py", "homa": "etran/transports/homa.py"}
ACCEPT_LOOK = 0.2                 # how often a waiting accept looks whether to stop
RESTARTS = 5                      # at most this many restarts of a daemon ...
RESTART_WINDOW = 60.0             # ... in this many seconds, then the supervisor gives up
PR_SET_PDEATHSIG = 1


def socket_path(record: runs.RunRecord, host: str, transport: str) -> str:
    """Where the `transport` daemon of `host` listens."""
    return os.path.join(record.run_dir, f"{host}.{transport}.sock")


def log_path(record: runs.RunRecord, host: str, transport: str) -> str:
    return os.path.join(record.run_dir, f"{host}.{transport}.log")


def message(tag: bytes, what: dict[str, Any]) -> bytes:
    """A tagged message with a JSON body."""
    return tag + json.dumps(what).encode()


def failure(exc: OSError) -> dict[str, Any]:
    """An error as it crosses a channel (errno and text), for `OSError(**...)` again."""
    code = exc.errno or errno.EIO
    return {"errno": code, "error": exc.strerror or str(exc) or os.strerror(code)}


REQUEST_ERRORS = (OSError, ValueError, KeyError, TypeError)


def refusal(exc: BaseException) -> dict[str, Any]:
    """A daemon's answer to a request it could not serve (one of REQUEST_ERRORS): the
    OSError's errno, or EINVAL for a malformed request."""
    if isinstance(exc, OSError):
        return {"ok": False, **failure(exc)}
    return {"ok": False, "errno": errno.EINVAL, "error": f"malformed request: {exc}"}


def read_line(chan: socket.socket) -> bytes:
    """One line off a stream channel, a byte at a time: what follows it is not ours to
    take (a buffered reader would keep it)."""
    line = b""
    while not line.endswith(b"\n") and (byte := chan.recv(1)):
        line += byte
    return line


# --------------------------------------------------------------------------- applications

def daemon_socket(transport: str) -> str:
    """The socket of this process's host's `transport` daemon; EtranRuntimeError saying
    what to do when there is none."""
    up = f"etran up {TRANSPORTS[transport]}"
    record, host = runs.this_host()
    if record is None:
        raise EtranRuntimeError(
            f"find the host's {transport} daemon",
            f"this process is not inside a host of a run; start one with `{up}` and run the "
            "application with `ip netns exec etran-<id>-<host> ...`")
    path = socket_path(record, host, transport)
    if not os.path.exists(path):
        raise EtranRuntimeError(
            f"find the host's {transport} daemon",
            f"host {host} of run {record.run_id} has no {transport} daemon (the run is not "
            f"etran's {transport} transport, was started with --no-daemon, or its daemon "
            f"stopped: see {log_path(record, host, transport)}); start a run with `{up}`")
    return path


def open_channel(transport: str, request: dict[str, Any], kind: int,
                 timeout: float | None) -> tuple[socket.socket, dict[str, Any]]:
    """A channel of `kind` (SOCK_SEQPACKET or SOCK_STREAM) to this host's daemon, with
    `request` sent and the daemon's answer read: OSError with the daemon's errno when it
    refuses, EtranRuntimeError when there is no daemon to ask."""
    path = daemon_socket(transport)
    chan = socket.socket(socket.AF_UNIX, kind)
    try:
        try:
            chan.connect(path)
        except (ConnectionRefusedError, FileNotFoundError) as exc:
            raise EtranRuntimeError(f"reach the host's {transport} daemon",
                                    f"{path}: {exc.strerror}; is the run still up?") from None
        chan.settimeout(None if timeout is None else timeout + 5)
        if kind == socket.SOCK_SEQPACKET:
            chan.send(json.dumps(request).encode())
            raw = chan.recv(1 << 16)
        else:
            chan.sendall(json.dumps(request).encode() + b"\n")
            raw = read_line(chan)
        reply = json.loads(raw) if raw else {"ok": False, "errno": errno.ECONNABORTED,
                                              "error": "the daemon closed the request"}
    except BaseException:
        chan.close()
        raise
    if not reply.get("ok"):
        chan.close()
        raise OSError(reply["errno"], reply["error"])
    chan.settimeout(None)
    return chan, reply


# --------------------------------------------------------------------------- the daemon

class UnixService:
    """Listens on `path` (any process of the host may connect: it is a host's network
    stack, as the kernel's own is) and hands each channel to `handle` in a thread of its
    own, until `stop`. The socket appears under its final name only once it accepts, so
    whoever waits for the name waits for a daemon ready to serve."""

    def __init__(self, path: str, kind: int, handle: Callable[[socket.socket], None]) -> None:
        self.path = path
        self.handle = handle
        self.stopped = threading.Event()
        self._server = socket.socket(socket.AF_UNIX, kind)

    def serve(self) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o755, exist_ok=True)
        staging = f"{self.path}.{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)
        try:
            self._server.bind(staging)
            os.chmod(staging, 0o666)
            self._server.listen(64)
            os.replace(staging, self.path)
            self._server.settimeout(ACCEPT_LOOK)
            while not self.stopped.is_set():
                try:
                    chan, _ = self._server.accept()
                except TimeoutError:
                    continue
                chan.settimeout(None)
                threading.Thread(target=self.handle, args=(chan,), daemon=True).start()
        finally:
            for name in (self.path, staging):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name)
            self._server.close()

    def stop(self) -> None:
        self.stopped.set()


class StackDaemon:
    """A host's stack and the Unix service its applications reach it by; `_channel` (the
    transport's) serves one application channel."""

    def __init__(self, stack: Any, path: str, kind: int) -> None:
        self.stack = stack
        self.service = UnixService(path, kind, self._channel)

    def _channel(self, chan: socket.socket) -> None:
        raise NotImplementedError

    def serve(self) -> None:
        try:
            self.service.serve()
        finally:
            self.stack.close()

    def stop(self) -> None:
        self.service.stop()


def run_daemon(daemon: StackDaemon) -> None:
    """Be the daemon proper (`etran hostd --worker`): die with the supervisor, stop on
    SIGTERM, serve until then."""
    _die_with_parent()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: daemon.stop())
    daemon.serve()


def _die_with_parent() -> None:
    """The worker gets SIGTERM when its supervisor goes (even killed), so that no daemon
    outlives the process `etran down` stops."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:                       # the supervisor went before the call
        raise SystemExit(0)


def supervise(worker: list[str], what: str) -> int:
    """Run `worker`; start it again when it dies of anything but our own stop."""
    stopping = threading.Event()
    child: list[subprocess.Popen[bytes]] = []

    def stop(*_: object) -> None:
        stopping.set()
        if child and child[0].poll() is None:
            child[0].send_signal(signal.SIGTERM)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    starts: collections.deque[float] = collections.deque()
    while not stopping.is_set():
        now = time.monotonic()
        while starts and now - starts[0] > RESTART_WINDOW:
            starts.popleft()
        if len(starts) > RESTARTS:
            print(f"etran hostd: {what} died {len(starts)} times in {RESTART_WINDOW:.0f} s; "
                  "not starting it again", file=sys.stderr, flush=True)
            return 1
        starts.append(now)
        child[:] = [subprocess.Popen(worker)]
        code = child[0].wait()
        if not stopping.is_set():
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
            print(f"etran hostd: {what} ended ({how}); starting it again", file=sys.stderr,
                  flush=True)
    return 0

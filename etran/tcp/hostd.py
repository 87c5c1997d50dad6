"""The host's TCP daemon: the one process of a host that holds etran's TCP data path.

eTran keeps transport state out of the applications' reach: the maps and programs belong to
a daemon, and an application holds only its own socket. `etran up etran/transports/tcp.py`
starts one daemon per host (`etran hostd`, inside the host's namespace, listed in the run's
state file); it runs the host's `TcpStack` (the pinned maps and programs, the AF_XDP socket,
the pumps, the control plane) and serves applications over a Unix socket,
``/run/etran/<run>/<host>.tcp.sock``. An application (`etran.tcp.connect`, `etran.tcp.listen`,
`etran nc`) needs no capability at all: with `kernel.unprivileged_bpf_disabled` set, as on
any distribution kernel, it could not open a map or program if it tried, and egress runs on
the daemon's veth pair, so nothing it sends leaves without passing `tcp_tx`. Any number of
applications share a host this way (a process running `TcpStack` itself takes the host's
AF_XDP queue alone).

The protocol, on AF_UNIX SOCK_SEQPACKET (messages keep their bounds and can carry fds); one
channel per socket:

* the application's first message is a JSON request, ``{"op": "connect", "address": [ip,
  port], "timeout": s}`` or ``{"op": "listen", "port": p, "backlog": n}``; the reply is
  ``{"ok": true, "local": [ip, port], "peer": [ip, port]}`` or ``{"ok": false, "errno": n,
  "error": text}``;
* then, on a connection's channel, messages of a tag byte and a body: ``D`` data (both
  ways), ``W`` (application: shut down for writing, our FIN), ``C`` (application: closing),
  ``F`` (daemon: the peer's FIN, no more data), ``X`` + JSON ``{"errno", "error"}`` (daemon:
  the connection failed);
* on a listener's channel, for each connection accepted, ``A`` + JSON ``{"local", "peer"}``
  with the application's end of a new connection channel passed as SCM_RIGHTS.

A channel closed after ``C`` closes its connection (FIN, the stack finishes the close); one
closed without it, the application having died, resets it (RST), as Linux does for a
process that exits with data it never read.
"""

from __future__ import annotations

import argparse
import array
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
from typing import Any

from etran.runtime import runs
from etran.tcp.app import CONNECT_TIMEOUT, MAX_DATA, MAX_MESSAGE, log_path, socket_path
from etran.tcp.stack import TcpListener, TcpSocket, TcpStack

ACCEPT_LOOK = 0.2                 # how often a listener's acceptor looks whether to stop

__all__ = ["Daemon", "Relay", "log_path", "main", "socket_path"]


def _json(tag: bytes, what: dict[str, Any]) -> bytes:
    return tag + json.dumps(what).encode()


def _failure(exc: OSError) -> dict[str, Any]:
    code = exc.errno or errno.EIO
    return {"errno": code, "error": exc.strerror or str(exc) or os.strerror(code)}


class Daemon:
    """Serves the applications of one host of a run (see the module's docstring)."""

    def __init__(self, record: runs.RunRecord, host: str) -> None:
        self.record = record
        self.host = host
        self.path = socket_path(record, host)
        self._stop = threading.Event()
        self.stack = TcpStack.in_run(record, host)
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)

    def serve(self) -> None:
        """Listen (the socket appears under its final name only once it accepts, so whoever
        waits for it waits for a daemon ready to serve), then serve until `stop`."""
        os.makedirs(os.path.dirname(self.path), mode=0o755, exist_ok=True)
        staging = f"{self.path}.{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)
        self._server.bind(staging)
        os.chmod(staging, 0o666)        # any process of the host may connect: it is a host's
        self._server.listen(64)         # network stack, as the kernel's own is
        os.replace(staging, self.path)
        self._server.settimeout(ACCEPT_LOOK)
        try:
            while not self._stop.is_set():
                try:
                    chan, _ = self._server.accept()
                except TimeoutError:
                    continue
                chan.settimeout(None)
                threading.Thread(target=self._channel, args=(chan,), daemon=True).start()
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self._server.close()
            self.stack.close()

    def stop(self) -> None:
        self._stop.set()

    def _channel(self, chan: socket.socket) -> None:
        """One application socket: its request, then its data or its accepted connections."""
        try:
            request = json.loads(chan.recv(MAX_MESSAGE))
            op = request["op"]
            if op == "connect":
                ip, port = request["address"]
                timeout = request.get("timeout") or CONNECT_TIMEOUT
                sock = self.stack.connect((str(ip), int(port)), timeout=float(timeout))
                chan.send(json.dumps({"ok": True, "local": sock.getsockname(),
                                      "peer": sock.getpeername()}).encode())
                Relay(sock, chan).run()
            elif op == "listen":
                listener = self.stack.listen(int(request["port"]), int(request.get("backlog", 16)))
                chan.send(json.dumps({"ok": True, "local": [self.stack.host.ip, listener.port],
                                      "peer": None}).encode())
                self._accept_for(listener, chan)
            else:
                raise OSError(errno.EINVAL, f"unknown request {op!r}")
        except OSError as exc:
            with contextlib.suppress(OSError):
                chan.send(json.dumps({"ok": False, **_failure(exc)}).encode())
            chan.close()
        except (ValueError, KeyError, TypeError) as exc:
            with contextlib.suppress(OSError):
                chan.send(json.dumps({"ok": False, "errno": errno.EINVAL,
                                      "error": f"malformed request: {exc}"}).encode())
            chan.close()

    def _accept_for(self, listener: TcpListener, chan: socket.socket) -> None:
        """Hand each connection the listener accepts to the application, on a channel of its
        own, until the application closes the listener's channel."""
        closed = threading.Event()
        once = threading.Lock()

        def close() -> None:            # once: the port may be listened on again at once
            if once.acquire(blocking=False):
                closed.set()
                listener.close()

        def watch() -> None:            # the application's end: closing it closes the listener
            with contextlib.suppress(OSError):
                while chan.recv(MAX_MESSAGE) not in (b"", b"C"):
                    pass
            close()
        threading.Thread(target=watch, daemon=True).start()
        listener.settimeout(ACCEPT_LOOK)
        try:
            while not closed.is_set() and not self._stop.is_set():
                try:
                    sock, peer = listener.accept()
                except TimeoutError:
                    continue
                ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                try:
                    chan.sendmsg([_json(b"A", {"local": sock.getsockname(), "peer": peer})],
                                 [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                   array.array("i", [theirs.fileno()]))])
                except OSError:
                    sock.abort()                # the application is gone
                    ours.close()
                    break
                finally:
                    theirs.close()
                threading.Thread(target=Relay(sock, ours).run, daemon=True).start()
        finally:
            close()
            chan.close()


class Relay:
    """One connection between its TCP socket and its application's channel: the calling
    thread carries the application's messages to the socket, a second thread the socket's
    data to the application. A full channel stops the second thread, which stops reading
    the socket, whose window then closes: the application's pace is the peer's."""

    def __init__(self, sock: TcpSocket, chan: socket.socket) -> None:
        self.sock = sock
        self.chan = chan

    def run(self) -> None:
        sock, chan = self.sock, self.chan
        sock.settimeout(None)
        down = threading.Thread(target=self._down, daemon=True)
        down.start()
        # (this thread sleeps between the application's messages: spinning here too, beside
        # the application's spin and the other thread's in `recv`, was slower, three
        # spinners on two CPUs)
        graceful = False
        try:
            while True:
                try:
                    message = chan.recv(MAX_MESSAGE)
                except OSError:             # (ECONNRESET: it died with our data unread)
                    break
                tag = message[:1]
                if tag == b"D":
                    sock.sendall(message[1:])
                elif tag == b"W":
                    sock.shutdown(socket.SHUT_WR)
                elif tag == b"C":
                    graceful = True
                    break
                elif not message:           # closed without a goodbye: it died
                    break
        except OSError as exc:              # the connection failed under a send: tell it
            with contextlib.suppress(OSError):
                chan.send(_json(b"X", _failure(exc)))
            graceful = True                 # (nothing left to reset)
        finally:
            if graceful:
                sock.close()
            else:
                sock.abort()                # the application died: RST, as Linux does
            chan.close()

    def _down(self) -> None:
        sock, chan = self.sock, self.chan
        try:
            while data := sock.recv(MAX_DATA):
                chan.send(b"D" + data)
            chan.send(b"F")
        except OSError as exc:
            with contextlib.suppress(OSError):
                if sock.stack.error is None and not sock._closed:
                    chan.send(_json(b"X", _failure(exc)))


RESTARTS = 5                      # at most this many restarts of a daemon ...
RESTART_WINDOW = 60.0             # ... in this many seconds, then the supervisor gives up
PR_SET_PDEATHSIG = 1


def main(argv: list[str] | None = None) -> int:
    """`etran hostd --run ID --host NAME`: started by `etran up` inside the host's namespace;
    SIGTERM (`etran down`) stops it. It supervises the daemon proper (`--worker`, a child
    process): a daemon that dies (killed mid-transfer, say) is started again, and the new
    one's stack clears the dead one's connections from the maps, so their peers get a RST
    at their next segment instead of retransmitting into nothing."""
    parser = argparse.ArgumentParser(prog="etran hostd")
    parser.add_argument("--run", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--worker", action="store_true")
    args = parser.parse_args(argv)
    record = runs.find_run(args.run)
    if record is None or args.host not in record.hosts:
        print(f"etran hostd: no host {args.host} in a run {args.run}", file=sys.stderr)
        return 2
    if not args.worker:
        return supervise(args.run, args.host)
    _die_with_parent()
    daemon = Daemon(record, args.host)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: daemon.stop())
    daemon.serve()
    return 0


def _die_with_parent() -> None:
    """The worker gets SIGTERM when its supervisor goes (even killed), so that no daemon
    outlives the process `etran down` stops."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:                       # the supervisor went before the call
        raise SystemExit(0)


def supervise(run_id: str, host: str) -> int:
    """Run the worker; start it again when it dies of anything but our own stop."""
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
            print(f"etran hostd: the daemon of host {host} died {len(starts)} times in "
                  f"{RESTART_WINDOW:.0f} s; not starting it again", file=sys.stderr, flush=True)
            return 1
        starts.append(now)
        child[:] = [subprocess.Popen([sys.executable, "-m", "etran", "hostd", "--run", run_id,
                                      "--host", host, "--worker"])]
        code = child[0].wait()
        if not stopping.is_set():
            print(f"etran hostd: the daemon of host {host} ended ({_how(code)}); starting it "
                  "again", file=sys.stderr, flush=True)
    return 0


def _how(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"exit {code}"

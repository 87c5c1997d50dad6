"""`etran nc`: netcat over etran's TCP, from a shell inside a host of a run.

    etran up etran/transports/tcp.py
    ip netns exec etran-<id>-a etran nc 10.111.0.2 5001 < file      # to any TCP on b
    ip netns exec etran-<id>-b etran nc -l 5001 > copy               # or an etran listener

Standard input goes to the peer; what the peer sends goes to standard output. At the end of
standard input our side is shut down for writing (FIN), and the command ends when the peer
has closed too. The command finds its host by the namespace it runs in and talks to the
host's TCP daemon (`etran.tcp.hostd`, started by `etran up`), so it needs no privilege; in
a run started with `--no-daemon` it runs the host's stack itself from the run's pins.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import Any

from etran.runtime import runs

CHUNK = 1 << 16


def add_nc(subparsers: Any, guarded: Any) -> None:
    nc = subparsers.add_parser("nc", help="netcat over etran's TCP, inside a host of a run")
    nc.add_argument("-l", "--listen", action="store_true",
                    help="wait for one connection on PORT instead of connecting")
    nc.add_argument("-w", "--timeout", type=float, default=10.0, metavar="SECONDS",
                    help="give up connecting, or on a silent peer, after this (default 10)")
    nc.add_argument("address", nargs="+", metavar="HOST PORT",
                    help="HOST PORT to connect to; with -l, PORT (or HOST PORT: HOST ignored)")
    nc.set_defaults(func=lambda args: guarded("nc", _nc, args, admin=lambda: not _daemon_here()))


def daemon_here(transport: str) -> bool:
    """Whether this process is inside a host whose `transport` daemon listens (then `etran
    nc` or `etran rpc` is an application like any other and needs no privilege)."""
    from etran.runtime.hostd import socket_path
    record, host = runs.this_host()
    return record is not None and os.path.exists(socket_path(record, host, transport))


def _daemon_here() -> bool:
    return daemon_here("tcp")


def _nc(args: argparse.Namespace) -> int:
    from etran.tcp.stack import TRANSPORT, TcpStack

    target = _parse(args)
    if isinstance(target, str):
        print(f"etran nc: {target}", file=sys.stderr)
        return 2
    if _daemon_here():
        return _through_daemon(args, target)
    record, host = runs.this_host()
    if record is None:
        print("etran nc: this shell is not inside a host of a run; start one with `etran up "
              f"{os.path.relpath(TRANSPORT)}` and use `ip netns exec etran-<id>-<host> "
              "etran nc ...`", file=sys.stderr)
        return 2
    if not os.path.exists(os.path.join(runs.reachable_pin_dir(record), host, "maps", "conns")):
        print(f"etran nc: run {record.run_id} is not running etran's TCP transport "
              f"({record.source or 'unknown source'}); start it with `etran up "
              f"{os.path.relpath(TRANSPORT)}`", file=sys.stderr)
        return 2
    with TcpStack.in_run(record, host) as stack:
        return _open_and_copy(args, target, stack)


def _through_daemon(args: argparse.Namespace, target: tuple[str, int]) -> int:
    """The host's daemon holds the data path: this process only its socket."""
    import etran.tcp
    return _open_and_copy(args, target, etran.tcp)


def _open_and_copy(args: argparse.Namespace, target: tuple[str, int], sockets: Any) -> int:
    """Connect, or listen and take one connection, with `sockets` (a stack of this process
    or `etran.tcp`, the daemon's), then copy both ways."""
    from etran.runtime.errors import EtranRuntimeError
    try:
        if args.listen:
            with sockets.listen(target[1]) as listener:
                listener.settimeout(None)
                sock, _peer = listener.accept()
        else:
            sock = sockets.connect(target, timeout=args.timeout)
    except OSError as exc:
        print(f"etran nc: {target[0]}:{target[1]}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except EtranRuntimeError as exc:
        print(f"etran nc: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    return _copy(sock, args.timeout)


def _parse(args: argparse.Namespace) -> tuple[str, int] | str:
    parts = args.address
    if args.listen and len(parts) == 1:
        parts = ["", parts[0]]
    if len(parts) != 2:
        return "give HOST PORT (with -l: PORT)"
    try:
        port = int(parts[1])
    except ValueError:
        return f"{parts[1]!r} is not a port number"
    if not 0 < port < 65536:
        return f"port {port} is out of range (1 to 65535)"
    return parts[0], port


def _copy(sock: Any, timeout: float) -> int:
    """Standard input to the socket (then FIN), the socket to standard output, until the
    peer closes; 1 if the connection failed on the way."""
    failure: list[BaseException] = []

    def send() -> None:
        try:
            while chunk := os.read(sys.stdin.fileno(), CHUNK):
                sock.sendall(chunk)
            sock.shutdown(1)
        except OSError as exc:
            failure.append(exc)
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    out = sys.stdout.buffer
    sock.settimeout(None)
    try:
        while data := sock.recv(CHUNK):
            out.write(data)
            out.flush()
    except OSError as exc:
        failure.append(exc)
    sender.join(timeout)
    sock.settimeout(timeout)
    try:
        sock.close()
    except OSError as exc:
        failure.append(exc)
    if failure:
        first = failure[0]
        print(f"etran nc: {getattr(first, 'strerror', None) or first}", file=sys.stderr)
        return 1
    return 0

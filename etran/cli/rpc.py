"""`etran rpc`: Homa RPCs from a shell inside a host of a run, with latency percentiles.

    etran up etran/transports/homa.py
    ip netns exec etran-<id>-b etran rpc -l 4000                     # answer requests
    ip netns exec etran-<id>-a etran rpc 10.111.0.2 4000 --sizes 100,100000,1000000

The client sends `--count` requests of each size, `--outstanding` at a time, and prints per
size how many completed and failed and the latency percentiles (send to response). The
server answers every request with `--response` bytes, after `--delay` seconds (a service
time), until interrupted or until it has answered `--count` requests. The command finds
its host by the namespace it runs in and goes through the host's Homa daemon
(`etran.homa.hostd`, started by `etran up`), so it needs no privilege; in a run started
with `--no-daemon` it runs the host's stack itself from the run's pins.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Any

from etran.cli.nc import daemon_here
from etran.runtime import runs


def add_rpc(subparsers: Any, guarded: Any) -> None:
    rpc = subparsers.add_parser("rpc", help="Homa RPCs with latency percentiles, inside a "
                                "host of a run")
    rpc.add_argument("-l", "--listen", action="store_true",
                     help="serve on PORT: answer every request")
    rpc.add_argument("address", nargs="+", metavar="HOST PORT",
                     help="HOST PORT to call; with -l, PORT")
    rpc.add_argument("--sizes", default="100",
                     help="request sizes in bytes, comma-separated (default 100)")
    rpc.add_argument("--count", type=int, default=None,
                     help="requests per size (client), or requests to answer before "
                     "exiting (server; 0: until interrupted). Default 100 (client), 0 (-l)")
    rpc.add_argument("--outstanding", type=int, default=1,
                     help="requests in flight at once (default 1)")
    rpc.add_argument("--response", type=int, default=64,
                     help="bytes in each response (server; default 64)")
    rpc.add_argument("--delay", type=float, default=0.0, metavar="SECONDS",
                     help="time the server takes to answer each request (default 0)")
    rpc.add_argument("-w", "--timeout", type=float, default=10.0, metavar="SECONDS",
                     help="give up on one request after this (default 10)")
    rpc.set_defaults(func=lambda args: guarded("rpc", _rpc, args,
                                               admin=lambda: not daemon_here("homa")))


def _rpc(args: argparse.Namespace) -> int:
    from etran.homa.stack import TRANSPORT, HomaStack
    from etran.homa.wire import MAX_MESSAGE
    from etran.runtime.runs import this_host

    problem, target, sizes = _parse(args, MAX_MESSAGE)
    if problem:
        print(f"etran rpc: {problem}", file=sys.stderr)
        return 2
    if daemon_here("homa"):
        return _through_daemon(args, target, sizes)
    record, host = this_host()
    up = f"etran up {os.path.relpath(TRANSPORT)}"
    if record is None:
        print(f"etran rpc: this shell is not inside a host of a run; start one with `{up}` "
              "and use `ip netns exec etran-<id>-<host> etran rpc ...`", file=sys.stderr)
        return 2
    if not os.path.exists(os.path.join(runs.reachable_pin_dir(record), host, "maps", "cands")):
        print(f"etran rpc: run {record.run_id} is not running etran's Homa transport "
              f"({record.source or 'unknown source'}); start it with `{up}`", file=sys.stderr)
        return 2
    with HomaStack.in_run(record, host) as stack:
        if args.listen:
            return _serve(stack, target[1], args.count, args.response, args.delay)
        return _call(stack, target, sizes, args.count, args.outstanding, args.timeout)


def _through_daemon(args: argparse.Namespace, target: tuple[str, int], sizes: list[int]) -> int:
    """The host's daemon holds the data path: this process only its RPCs."""
    from etran.homa import app
    from etran.runtime.errors import EtranRuntimeError

    class Daemon:                       # what `_serve` and `_call` ask a stack for
        server = staticmethod(app.server)
        client = staticmethod(app.client)
    try:
        if args.listen:
            return _serve(Daemon, target[1], args.count, args.response, args.delay)
        return _call(Daemon, target, sizes, args.count, args.outstanding, args.timeout)
    except OSError as exc:
        print(f"etran rpc: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except EtranRuntimeError as exc:
        print(f"etran rpc: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1


def _parse(args: argparse.Namespace, most: int) -> tuple[str, tuple[str, int], list[int]]:
    parts = list(args.address)
    if args.listen and len(parts) == 1:
        parts = ["", parts[0]]
    if len(parts) != 2:
        return "give HOST PORT (with -l: PORT)", ("", 0), []
    try:
        port = int(parts[1])
    except ValueError:
        return f"{parts[1]!r} is not a port number", ("", 0), []
    if not 0 < port < 65536:
        return f"port {port} is out of range (1 to 65535)", ("", 0), []
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        return f"--sizes {args.sizes!r}: give sizes in bytes separated by commas", ("", 0), []
    for n in [*sizes, args.response]:
        if not 1 <= n <= most:
            return f"a message of {n:,} bytes: Homa messages are 1 to {most:,} bytes", \
                ("", 0), []
    if args.count is None:
        args.count = 0 if args.listen else 100
    if args.count < 0 or args.outstanding < 1 or args.delay < 0:
        return "--count and --delay must be at least 0, --outstanding at least 1", \
            ("", 0), []
    if not args.listen and args.count < 1:
        return "--count must be at least 1 for a client", ("", 0), []
    return "", (parts[0], port), sizes


def _serve(stack: Any, port: int, count: int, response_size: int, delay: float) -> int:
    """Answer requests until `count` were (0: until interrupted). Without a delay, each is
    answered where it arrives (the server's handler: no thread of ours to wake); with one,
    by this thread, which sleeps `delay` before each answer."""
    response = bytes(response_size)
    if not delay:
        answered = [0]
        done = threading.Event()

        def handler(_request: Any) -> bytes | None:
            if count and answered[0] >= count:
                return None                  # the server is closing: one too many
            answered[0] += 1
            if answered[0] == count:
                done.set()
            return response
        with stack.server(port, handler=handler):
            print(f"serving Homa requests on port {port}", flush=True)
            while not done.wait(0.5):
                pass
        print(f"answered {answered[0]} requests", flush=True)
        return 0
    served = 0
    with stack.server(port) as server:
        print(f"serving Homa requests on port {port}", flush=True)
        while count == 0 or served < count:
            try:
                request = server.receive(timeout=0.5)
            except TimeoutError:
                continue
            time.sleep(delay)
            server.reply(request, response)
            served += 1
    print(f"answered {served} requests", flush=True)
    return 0


def _call(stack: Any, target: tuple[str, int], sizes: list[int], count: int,
          outstanding: int, timeout: float) -> int:
    client = stack.client()
    print(f"{'size':>9} {'done':>5} {'failed':>6} {'p50 ms':>8} {'p90 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8}")
    failures = 0
    for size in sizes:
        times, errors = _measure(client, target, size, count, outstanding, timeout)

        def pct(p: float, times: list[float] = times) -> str:
            if not times:
                return "-"
            return f"{times[min(len(times) - 1, int(p / 100 * len(times)))] * 1e3:.2f}"
        print(f"{size:>9} {len(times):>5} {len(errors):>6} {pct(50):>8} {pct(90):>8} "
              f"{pct(99):>8} {pct(100):>8}", flush=True)
        for why in sorted(set(errors)):
            print(f"  failed: {why}", file=sys.stderr)
        failures += len(errors)
    return 1 if failures else 0


def _measure(client: Any, target: tuple[str, int], size: int, count: int, outstanding: int,
             timeout: float) -> tuple[list[float], list[str]]:
    """`count` requests of `size` bytes, `outstanding` at a time: sorted latencies (s) and
    the errors of those that failed."""
    times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    left = [count]

    def worker() -> None:
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            start = time.perf_counter()
            try:
                client.call(target, bytes(size), timeout=timeout)
            except OSError as exc:
                with lock:
                    errors.append(exc.strerror or str(exc))
                continue
            with lock:
                times.append(time.perf_counter() - start)
    threads = [threading.Thread(target=worker) for _ in range(min(outstanding, count))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(times), errors

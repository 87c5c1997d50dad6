"""Incast: eight senders call one receiver; etran's Homa against etran's TCP and Linux's TCP.

Topology `incast:8` (eight senders s0..s7 and a receiver r, one switch). Each sender keeps
OUTSTANDING requests in flight (one thread each, a closed loop) and the receiver answers
each with 64 bytes. Request sizes come from a seeded draw, the same for every transport:

* 90% short, 100 B to 10 KB (uniform): the requests whose latency matters, as in the
  datacenter workloads Homa was built for, where most messages are small;
* 10% long, 200 KB to 1 MB: few messages but most of the bytes, the load that short
  messages must not queue behind.

Reported per transport, in one run: p50 and p99 latency of the short requests (send to
response), p50 of the long ones, and goodput (request bytes the receiver got, per second).
Homa runs `etran.homa` (data path etran/transports/homa.py); TCP runs one connection per
outstanding request, a 4-byte length before each request, with `etran.tcp` at both ends or
Linux sockets at both ends. A CDF of short-request latency per transport is written as
an SVG next to `--out` when given.

Target (issue 10): Homa's short-request p99 at most 0.5x Linux TCP's, at equal or better
goodput. Run as root: `.venv/bin/python bench/homa_incast.py [--rpcs N] [--senders N]`.
"""
from __future__ import annotations

import argparse
import random
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etran.homa import HomaStack  # noqa: E402
from etran.runtime.topology import Host, Topology  # noqa: E402
from etran.tcp import TcpStack  # noqa: E402

PORT = 7000
OUTSTANDING = 4
RESPONSE = 64
SHORT_MAX = 10_000


@dataclass
class Result:
    name: str
    latencies: list[tuple[int, float]] = field(default_factory=list)   # (size, seconds)
    seconds: float = 0.0
    failed: int = 0

    def short(self) -> list[float]:
        return sorted(t for n, t in self.latencies if n <= SHORT_MAX)

    def long(self) -> list[float]:
        return sorted(t for n, t in self.latencies if n > SHORT_MAX)

    def goodput(self) -> float:
        return sum(n for n, _ in self.latencies) / self.seconds if self.seconds else 0.0


def sizes(count: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(100, SHORT_MAX) if rng.random() < 0.9 else rng.randint(200_000, 1_000_000)
            for _ in range(count)]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def closed_loops(plans: list[list[int]], call: Callable[[int, int, bytes], None],
                 result: Result) -> None:
    """OUTSTANDING threads per sender, each taking the next size of its sender's plan."""
    lock = threading.Lock()
    cursors = [0] * len(plans)

    def worker(sender: int, slot: int) -> None:
        while True:
            with lock:
                if cursors[sender] >= len(plans[sender]):
                    return
                size = plans[sender][cursors[sender]]
                cursors[sender] += 1
            start = time.perf_counter()
            try:
                call(sender, slot, bytes(size))
            except OSError:
                with lock:
                    result.failed += 1
                continue
            with lock:
                result.latencies.append((size, time.perf_counter() - start))
    threads = [threading.Thread(target=worker, args=(s, k), daemon=True)
               for s in range(len(plans)) for k in range(OUTSTANDING)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - start


def run_homa(topo: Topology, senders: list[Host], r: Host, plans: list[list[int]]) -> Result:
    result = Result("etran Homa")
    stacks = [HomaStack(topo, h.name) for h in senders]
    try:
        with HomaStack(topo, r.name) as receiver:
            server = receiver.server(PORT)
            stop = threading.Event()

            def serve() -> None:
                while not stop.is_set():
                    try:
                        request = server.receive(timeout=0.05)
                    except OSError:
                        continue
                    server.reply(request, bytes(RESPONSE))
            workers = [threading.Thread(target=serve, daemon=True) for _ in range(2)]
            for w in workers:
                w.start()
            clients = [stack.client() for stack in stacks]
            closed_loops(plans, lambda s, _k, req: _check(clients[s].call((r.ip, PORT), req,
                                                                            timeout=30)),
                         result)
            stop.set()
            for w in workers:
                w.join()
    finally:
        for stack in stacks:
            stack.close()
    return result


def _check(response: bytes) -> None:
    if len(response) != RESPONSE:
        raise OSError(f"a response of {len(response)} bytes")


def recv_exact(recv: Callable[[int], bytes], n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = recv(n - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def linux_server(r: Host) -> tuple[socket.socket, threading.Thread]:
    with r.entered():
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((r.ip, PORT))
    listener.listen(64)

    def handle(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            try:
                while True:
                    (n,) = struct.unpack("!I", recv_exact(conn.recv, 4))
                    recv_exact(conn.recv, n)
                    conn.sendall(bytes(RESPONSE))
            except OSError:
                pass

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    return listener, thread


def run_linux(senders: list[Host], r: Host, plans: list[list[int]]) -> Result:
    result = Result("Linux TCP")
    listener, _ = linux_server(r)
    conns: dict[tuple[int, int], socket.socket] = {}
    try:
        for s, host in enumerate(senders):
            for k in range(OUTSTANDING):
                with host.entered():
                    c = socket.create_connection((r.ip, PORT))
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conns[(s, k)] = c

        def call(s: int, k: int, req: bytes) -> None:
            c = conns[(s, k)]
            c.sendall(struct.pack("!I", len(req)) + req)
            recv_exact(c.recv, RESPONSE)
        closed_loops(plans, call, result)
    finally:
        for c in conns.values():
            c.close()
        listener.close()
    return result


def run_etran_tcp(topo: Topology, senders: list[Host], r: Host,
                  plans: list[list[int]]) -> Result:
    result = Result("etran TCP")
    stacks = [TcpStack(topo, h.name) for h in senders]
    try:
        with TcpStack(topo, r.name) as receiver:
            listener = receiver.listen(PORT, backlog=64)
            listener.timeout = 0.1
            stop = threading.Event()

            def handle(conn: Any) -> None:
                with conn:
                    try:
                        while True:
                            (n,) = struct.unpack("!I", recv_exact(conn.recv, 4))
                            recv_exact(conn.recv, n)
                            conn.sendall(bytes(RESPONSE))
                    except OSError:
                        pass

            def accept() -> None:
                while not stop.is_set():
                    try:
                        conn, _ = listener.accept()
                    except OSError:
                        continue
                    threading.Thread(target=handle, args=(conn,), daemon=True).start()
            acceptor = threading.Thread(target=accept, daemon=True)
            acceptor.start()
            conns = {(s, k): stacks[s].connect((r.ip, PORT), timeout=5)
                     for s in range(len(senders)) for k in range(OUTSTANDING)}

            def call(s: int, k: int, req: bytes) -> None:
                c = conns[(s, k)]
                c.sendall(struct.pack("!I", len(req)) + req)
                recv_exact(c.recv, RESPONSE)
            closed_loops(plans, call, result)
            for c in conns.values():
                c.close()
            stop.set()
            acceptor.join()
    finally:
        for stack in stacks:
            stack.close()
    return result


def cdf_svg(results: list[Result], path: Path) -> None:
    """Short-request latency CDFs, log-scale time axis, one line per transport."""
    import math
    width, height, left, bottom = 640, 360, 60, 40
    everything = [t for r in results for t in r.short()]
    if not everything:
        return
    lo, hi = math.log10(min(everything)), math.log10(max(everything))
    span = max(hi - lo, 1e-9)
    colours = ["#1f77b4", "#d62728", "#2ca02c"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">',
             f'<text x="{width / 2}" y="16" text-anchor="middle">short requests: latency '
             'CDF (incast:8)</text>']
    for i, res in enumerate(results):
        values = res.short()
        points = " ".join(
            f"{left + (math.log10(v) - lo) / span * (width - left - 20):.1f},"
            f"{height - bottom - (j + 1) / len(values) * (height - bottom - 30):.1f}"
            for j, v in enumerate(values))
        parts.append(f'<polyline fill="none" stroke="{colours[i % 3]}" points="{points}"/>')
        parts.append(f'<text x="{left + 10}" y="{40 + 16 * i}" fill="{colours[i % 3]}">'
                     f'{res.name}</text>')
    for exp in range(math.floor(lo), math.ceil(hi) + 1):
        x = left + (exp - lo) / span * (width - left - 20)
        if left <= x <= width - 20:
            parts.append(f'<text x="{x:.1f}" y="{height - 20}" text-anchor="middle">'
                         f'{10 ** exp * 1000:g} ms</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--senders", type=int, default=8)
    ap.add_argument("--rpcs", type=int, default=60, help="requests per sender (default 60)")
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("--out", help="write the CDF plot here (SVG)")
    args = ap.parse_args()
    plans = [sizes(args.rpcs, args.seed * 100 + s) for s in range(args.senders)]
    results = []
    for run in ("homa", "etran-tcp", "linux"):      # a fresh topology for each transport
        with Topology(f"incast:{args.senders}") as topo:
            senders = [topo.host(f"s{i}") for i in range(args.senders)]
            r = topo.host("r")
            if run == "homa":
                results.append(run_homa(topo, senders, r, plans))
            elif run == "etran-tcp":
                results.append(run_etran_tcp(topo, senders, r, plans))
            else:
                results.append(run_linux(senders, r, plans))
    print(f"incast:{args.senders}, {OUTSTANDING} outstanding per sender, {args.rpcs} requests "
          f"per sender (90% 100 B-10 KB, 10% 200 KB-1 MB), {RESPONSE}-byte responses")
    print(f"{'transport':<12} {'short p50':>10} {'short p99':>10} {'long p50':>10} "
          f"{'goodput':>12} {'failed':>7}")
    for res in results:
        short, long_ = res.short(), res.long()
        print(f"{res.name:<12} {pct(short, 50) * 1e3:>8.2f}ms {pct(short, 99) * 1e3:>8.2f}ms "
              f"{pct(long_, 50) * 1e3:>8.1f}ms {res.goodput() / 1e6:>8.2f} MB/s {res.failed:>7}")
    homa, linux = results[0], results[-1]
    ratio = pct(homa.short(), 99) / pct(linux.short(), 99)
    good = homa.goodput() / linux.goodput() if linux.goodput() else float("nan")
    print(f"\nHoma / Linux TCP: short p99 {ratio:.2f}x (target at most 0.5), goodput {good:.2f}x "
          "(target at least 1.0)")
    if args.out:
        cdf_svg(results, Path(args.out))
        print(f"CDF written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Incast: eight senders call one receiver; etran's Homa against etran's TCP and Linux's TCP.

Topology `incast:8` (eight senders s0..s7 and a receiver r, one switch). Each sender keeps
OUTSTANDING requests in flight (one thread each, a closed loop) and the receiver answers
each with 64 bytes (Homa's on its receiving thread, as they arrive: `Server`'s handler).
Request sizes come from a seeded draw, the same for every transport:

* 90% short, 100 B to 10 KB (uniform): the requests whose latency matters, as in the
  datacenter workloads Homa was built for, where most messages are small;
* 10% long, 200 KB to 1 MB: few messages but most of the bytes, the load that short
  messages must not queue behind.

Reported per transport, in one run: p50 and p99 latency of the short requests (send to
response), p50 of the long ones, and goodput (request bytes the receiver got, per second).
Each sender makes 1,000 requests by default (7,200 short ones in all; about 50 s for the
three transports): with the 60 of earlier runs, p99 was the fifth-longest of 432 and moved
by 2x between runs of the same commit.
Homa runs `etran.homa` (data path etran/transports/homa.py), once with each host's
process running its stack and once ("Homa daemon") as applications of the hosts' daemons
(`etran.homa.app`: what a user's program started with `ip netns exec` is); TCP runs one connection per
outstanding request, a 4-byte length before each request, with `etran.tcp` at both ends or
Linux sockets at both ends. A CDF of short-request latency per transport is written as
an SVG next to `--out` when given.

Every host is its own process, as applications on separate machines are: for etran the
transport is started with `etran up ... --topology incast:N` and each host's process runs
inside the host's namespace (`ip netns exec`), taking the run's stack as `etran rpc` does
(`HomaStack.in_run`, `TcpStack.in_run`); the Linux sockets run in the same per-host
processes. The senders start together once all are ready; goodput counts from the first
request to the last response. (Until 2026-12-07 all hosts' stacks shared one Python
process, whose interpreter lock then carried every host's work: docs/homa.md has both.)

Target (issue 10): Homa's short-request p99 at most 0.5x Linux TCP's, at equal or better
goodput. Run as root: `.venv/bin/python bench/homa_incast.py [--rpcs N] [--senders N]`.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etran.runtime import runs  # noqa: E402
from etran.runtime.topology import Topology  # noqa: E402

TRANSPORTS = {"homa": ROOT / "etran" / "transports" / "homa.py",
              "homa-daemon": ROOT / "etran" / "transports" / "homa.py",
              "etran-tcp": ROOT / "etran" / "transports" / "tcp.py"}
NAMES = {"homa": "etran Homa", "homa-daemon": "Homa daemon", "etran-tcp": "etran TCP",
         "linux": "Linux TCP"}

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
    steal: float = 0.0            # share of the CPUs' time the VM's host took meanwhile

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


def closed_loop(plan: list[int], call: Callable[[int, bytes], None]) -> dict[str, Any]:
    """OUTSTANDING threads, each taking the next size of the plan: what one sender did."""
    lock = threading.Lock()
    cursor = [0]
    latencies: list[tuple[int, float]] = []
    failed = [0]

    def worker(slot: int) -> None:
        while True:
            with lock:
                if cursor[0] >= len(plan):
                    return
                size = plan[cursor[0]]
                cursor[0] += 1
            start = time.perf_counter()
            try:
                call(slot, bytes(size))
            except OSError as exc:
                print(f"a request of {size} bytes failed: {exc}", file=sys.stderr, flush=True)
                with lock:
                    failed[0] += 1
                continue
            with lock:
                latencies.append((size, time.perf_counter() - start))
    threads = [threading.Thread(target=worker, args=(k,), daemon=True)
               for k in range(OUTSTANDING)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies": latencies, "failed": failed[0], "start": start,
            "end": time.monotonic()}


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


def serve_stream(conn: Any) -> None:
    """One TCP connection of the receiver: a 4-byte length, the request, a response."""
    with conn:
        try:
            while True:
                (n,) = struct.unpack("!I", recv_exact(conn.recv, 4))
                recv_exact(conn.recv, n)
                conn.sendall(bytes(RESPONSE))
        except OSError:
            pass


# ---------------------------------------------------------------- one host's process

def worker(spec: dict[str, Any]) -> None:
    """A host's process (inside its namespace): the receiver serves until its stdin closes;
    a sender says "ready", waits for "go", runs its plan and prints what it measured."""
    kind, role = spec["transport"], spec["role"]
    record = runs.find_run(spec["run"]) if kind != "linux" else None
    if kind != "linux" and record is None:
        raise SystemExit(f"no run {spec['run']}")
    if kind == "homa":
        from etran.homa import HomaStack
        stack: Any = HomaStack.in_run(record, spec["host"])
    elif kind == "etran-tcp":
        from etran.tcp import TcpStack
        stack = TcpStack.in_run(record, spec["host"])
    else:
        stack = None
    try:
        if role == "receiver":
            _receive(kind, stack, spec)
        else:
            _send(kind, stack, spec)
    finally:
        if stack is not None:
            stack.close()


def _receive(kind: str, stack: Any, spec: dict[str, Any]) -> None:
    stop = threading.Event()
    threads = []
    app_server: Any = None
    if kind == "homa":
        # answered on the library's receiving thread, as it comes in (`Server`'s handler)
        stack.server(PORT, handler=lambda _request: bytes(RESPONSE))
    elif kind == "homa-daemon":
        # an application of the host's daemon, answering on the thread reading its channel
        from etran.homa import app
        app_server = app.server(PORT, handler=lambda _request: bytes(RESPONSE))
    else:
        if kind == "etran-tcp":
            listener = stack.listen(PORT, backlog=64)
            listener.settimeout(0.1)
        else:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((spec["ip"], PORT))
            listener.listen(64)
            listener.settimeout(0.1)

        def accept() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                if kind == "linux":
                    conn.settimeout(None)
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                threading.Thread(target=serve_stream, args=(conn,), daemon=True).start()
        threads = [threading.Thread(target=accept, daemon=True)]
    for t in threads:
        t.start()
    print("ready", flush=True)
    sys.stdin.read()                      # until the parent closes it
    stop.set()
    for t in threads:
        t.join()
    if app_server is not None:
        app_server.close()


def _send(kind: str, stack: Any, spec: dict[str, Any]) -> None:
    target = (spec["target"], PORT)
    call: Callable[[int, bytes], None]
    conns: list[Any] = []
    if kind in ("homa", "homa-daemon"):
        if kind == "homa":
            client = stack.client()
        else:
            from etran.homa import app
            client = app.client()

        def call(_slot: int, req: bytes) -> None:
            _check(client.call(target, req, timeout=30))
    else:
        for _ in range(OUTSTANDING):
            if kind == "etran-tcp":
                conns.append(stack.connect(target, timeout=5))
            else:
                c = socket.create_connection(target)
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conns.append(c)

        def call(slot: int, req: bytes) -> None:
            c = conns[slot]
            c.sendall(struct.pack("!I", len(req)) + req)
            recv_exact(c.recv, RESPONSE)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    outcome = closed_loop(spec["plan"], call)
    for c in conns:
        c.close()
    print(json.dumps(outcome), flush=True)


# ---------------------------------------------------------------- the parent

@contextmanager
def network(kind: str, senders: int) -> Iterator[dict[str, Any]]:
    """The incast topology, with the transport started by `etran up` for etran's (its run id
    for the workers) or bare for Linux's; torn down afterwards either way."""
    if kind == "linux":
        with Topology(f"incast:{senders}") as topo:
            yield {"run": "", "hosts": {n: (h.netns, h.ip) for n, h in topo.hosts.items()}}
        return
    # (--no-daemon: each host's worker runs its stack itself; "homa-daemon": the hosts'
    # daemons run them, and the workers are their applications)
    daemons = [] if kind == "homa-daemon" else ["--no-daemon"]
    up = subprocess.run([sys.executable, "-m", "etran", "up", str(TRANSPORTS[kind]),
                         "--topology", f"incast:{senders}", *daemons],
                        capture_output=True, text=True)
    match = re.search(r"etran: run (\S+) is up", up.stdout)
    if up.returncode != 0 or match is None:
        raise SystemExit(f"etran up failed:\n{up.stdout}{up.stderr}")
    run_id = match.group(1)
    try:
        record = runs.find_run(run_id)
        assert record is not None
        yield {"run": run_id, "hosts": {n: (h["netns"], h["ip"])
                                        for n, h in record.hosts.items()}}
    finally:
        subprocess.run([sys.executable, "-m", "etran", "down", "--run", run_id],
                       capture_output=True)


def spawn(netns: str, spec: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, __file__,
                             "--worker", json.dumps(spec)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)


def expect_ready(proc: subprocess.Popen[str], what: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise SystemExit(f"{what} did not start: {line!r}")


def cpu_times() -> tuple[int, int]:
    """All CPUs' time so far and the part of it the virtual machine's host took (steal),
    in ticks (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields[:8]), fields[7] if len(fields) > 7 else 0


def run_transport(kind: str, plans: list[list[int]]) -> Result:
    result = Result(NAMES[kind])
    with network(kind, len(plans)) as net:
        r_ns, r_ip = net["hosts"]["r"]
        base = {"transport": kind, "run": net["run"]}
        receiver = spawn(r_ns, {**base, "role": "receiver", "host": "r", "ip": r_ip})
        senders: list[subprocess.Popen[str]] = []
        try:
            expect_ready(receiver, "the receiver")
            for i, plan in enumerate(plans):
                ns, _ip = net["hosts"][f"s{i}"]
                senders.append(spawn(ns, {**base, "role": "sender", "host": f"s{i}",
                                          "target": r_ip, "plan": plan}))
            for i, proc in enumerate(senders):
                expect_ready(proc, f"sender s{i}")
            before = cpu_times()
            for proc in senders:                   # all at once
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            outcomes = []
            for i, proc in enumerate(senders):
                out, _ = proc.communicate(timeout=600)
                if proc.returncode != 0 or not out.strip():
                    raise SystemExit(f"sender s{i} failed (exit {proc.returncode})")
                outcomes.append(json.loads(out.strip().splitlines()[-1]))
            after = cpu_times()
            result.steal = (after[1] - before[1]) / max(1, after[0] - before[0])
        finally:
            for proc in senders:
                if proc.poll() is None:
                    proc.kill()
            receiver.communicate(timeout=60)       # closes its stdin: it stops
    for o in outcomes:
        result.latencies += [(int(n), float(t)) for n, t in o["latencies"]]
        result.failed += o["failed"]
    result.seconds = max(o["end"] for o in outcomes) - min(o["start"] for o in outcomes)
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
    colours = ["#1f77b4", "#9467bd", "#d62728", "#2ca02c"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">',
             f'<text x="{width / 2}" y="16" text-anchor="middle">short requests: latency '
             'CDF (incast:8)</text>']
    for i, res in enumerate(results):
        values = res.short()
        points = " ".join(
            f"{left + (math.log10(v) - lo) / span * (width - left - 20):.1f},"
            f"{height - bottom - (j + 1) / len(values) * (height - bottom - 30):.1f}"
            for j, v in enumerate(values))
        parts.append(f'<polyline fill="none" stroke="{colours[i % len(colours)]}" points="{points}"/>')
        parts.append(f'<text x="{left + 10}" y="{40 + 16 * i}" fill="{colours[i % len(colours)]}">'
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
    ap.add_argument("--rpcs", type=int, default=1000, help="requests per sender (default 1000)")
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("--out", help="write the CDF plot here (SVG)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)   # a host's process (`spawn`)
    args = ap.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    # stopped by a signal (a `timeout`, a closed terminal), the bench still kills its host
    # processes and takes its run down (`run_transport`, `network`)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda sig, _frame: sys.exit(128 + sig))
    plans = [sizes(args.rpcs, args.seed * 100 + s) for s in range(args.senders)]
    # a fresh network for each transport
    results = [run_transport(kind, plans)
               for kind in ("homa", "homa-daemon", "etran-tcp", "linux")]
    print(f"incast:{args.senders}, {OUTSTANDING} outstanding per sender, {args.rpcs} requests "
          f"per sender (90% 100 B-10 KB, 10% 200 KB-1 MB), {RESPONSE}-byte responses")
    print(f"{'transport':<12} {'short p50':>10} {'short p99':>10} {'long p50':>10} "
          f"{'goodput':>12} {'failed':>7}")
    for res in results:
        short, long_ = res.short(), res.long()
        print(f"{res.name:<12} {pct(short, 50) * 1e3:>8.2f}ms {pct(short, 99) * 1e3:>8.2f}ms "
              f"{pct(long_, 50) * 1e3:>8.1f}ms {res.goodput() / 1e6:>8.2f} MB/s {res.failed:>7}")
    print("CPU time the virtual machine's host took (steal) during each: " +
          ", ".join(f"{res.name} {100 * res.steal:.0f}%" for res in results))
    if max(res.steal for res in results) > 0.1:
        print("warning: over 10% of the CPUs' time was stolen: these numbers say more about "
              "the host's other guests than about the transports; run again later")
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

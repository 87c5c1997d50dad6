"""etran's TCP against Linux's TCP, same topology, same peer, same run.

Host b runs a plain Linux echo server (one for each client), in a process of its own inside
b's namespace as a remote peer would be (`Peer`). Host a runs the client twice:
once with a Linux socket, once with `etran.tcp` (the data path of etran/transports/tcp.py,
the control plane and sockets in Python, AF_XDP underneath). The peer is the kernel's TCP
both times, so the difference is our end alone.

* request/response: 64-byte request, 64-byte echo, one at a time, N round trips; p50, p99;
* bulk: M MiB from a to b (the server drains), goodput until the server has it all; and
  M MiB from a Linux client on b to a server on a (etran's ACKs are made by its gen hook);
* the ceiling of the application path: raw 64-byte frames through an AF_XDP socket from
  Python (frames/s), and what that makes at one MSS per frame;
* the same client as an application of an `etran up` run, reaching the data path through
  host a's daemon (round trips and bulk sending).

Run as root: ``.venv/bin/python bench/tcp_vs_linux.py [--rounds N] [--mib M]``.
"""
from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etran.runtime import runs  # noqa: E402
from etran.runtime.afxdp import XskSocket  # noqa: E402
from etran.runtime.topology import Host, Topology  # noqa: E402
from etran.tcp import TcpStack  # noqa: E402
from etran.tcp.segments import MSS  # noqa: E402
from etran.testing.packets import eth, ipv4, udp  # noqa: E402


class Peer:
    """Host b's Linux end, in a process of its own inside b's namespace (as a remote host's
    would be: it shares no interpreter lock with the client under test). `echo` answers
    what it reads, `sink` reads until EOF and says "done", `send` connects and sends."""

    def __init__(self, netns: str, *args: object) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, __file__, "--peer",
             *map(str, args)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.expect("ready")

    def expect(self, word: str) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != word:
            raise SystemExit(f"host b's peer said {line!r}, expected {word!r}")

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def peer_main(role: str, *args: str) -> None:
    """The `--peer` process (see `Peer`)."""
    if role == "send":
        ip, port, size = args[0], int(args[1]), int(args[2])
        print("ready", flush=True)
        with socket.create_connection((ip, port), timeout=10) as sock:
            sock.sendall(bytes(size))
        return
    ip, port = args[0], int(args[1])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((ip, port))
    listener.listen()
    listener.settimeout(30)
    print("ready", flush=True)
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with conn, listener:
        while data := conn.recv(1 << 16):
            if role == "echo":
                conn.sendall(data)
    print("done", flush=True)


def round_trips(send: Callable[[bytes], None], recv: Callable[[int], bytes],
                rounds: int) -> list[float]:
    message = bytes(64)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        send(message)
        got = 0
        while got < len(message):
            got += len(recv(len(message) - got))
        times.append((time.perf_counter() - start) * 1e6)
    return times


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def linux_client(a: Host, b: Host, port: int, rounds: int, size: int) -> tuple[list[float], float]:
    with Peer(b.netns, "echo", b.ip, port), a.entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect((b.ip, port))
            rtts = round_trips(sock.sendall, sock.recv, rounds)
    with Peer(b.netns, "sink", b.ip, port + 1) as sink, a.entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.connect((b.ip, port + 1))
        data = bytes(size)
        start = time.perf_counter()
        sock.sendall(data)
        sock.close()
        sink.expect("done")
        seconds = time.perf_counter() - start
    return rtts, size / seconds


def etran_client(topo: Topology, a: Host, b: Host, port: int, rounds: int,
                 size: int) -> tuple[list[float], float]:
    # the application runs inside host a, as one started with `ip netns exec` does (its
    # sends then enter no namespace)
    with TcpStack(topo, a.name) as stack, a.entered():
        with Peer(b.netns, "echo", b.ip, port), stack.connect((b.ip, port), timeout=10) as sock:
            rtts = round_trips(sock.sendall, sock.recv, rounds)
        with Peer(b.netns, "sink", b.ip, port + 1) as sink:
            sock = stack.connect((b.ip, port + 1), timeout=60)
            data = bytes(size)
            start = time.perf_counter()
            sock.sendall(data)
            sock.close()
            sink.expect("done")
            seconds = time.perf_counter() - start
    return rtts, size / seconds


def through_daemon(rounds: int, size: int) -> tuple[list[float], float]:
    """The same client as an application of a run started with `etran up`, which reaches
    the data path through host a's daemon (docs/tcp.md): round trips and bulk sending,
    measured in a process of its own inside host a."""
    up = subprocess.run([sys.executable, "-m", "etran", "up", str(ROOT / "etran" / "transports"
                                                                 / "tcp.py")],
                        capture_output=True, text=True, cwd=ROOT)
    if up.returncode != 0 or "etran: run " not in up.stdout:
        raise SystemExit(f"etran up failed:\n{up.stdout}{up.stderr}")
    run_id = up.stdout.split("etran: run ")[1].split()[0]
    try:
        app = subprocess.run(["ip", "netns", "exec", f"etran-{run_id}-a", sys.executable,
                              __file__, "--app", run_id, str(rounds), str(size)],
                             capture_output=True, text=True, cwd=ROOT)
        if app.returncode != 0:
            raise SystemExit(f"the application through the daemon failed:\n{app.stderr}")
        got = json.loads(app.stdout.splitlines()[-1])
        return got["rtts"], got["rate"]
    finally:
        subprocess.run([sys.executable, "-m", "etran", "down", "--run", run_id],
                       capture_output=True, cwd=ROOT)


def app_main(run_id: str, rounds: str, size: str) -> None:
    """The `--app` process: inside host a of run `run_id`, `etran.tcp` against b's peers."""
    import etran.tcp
    record = runs.find_run(run_id)
    assert record is not None
    netns, ip = record.hosts["b"]["netns"], record.hosts["b"]["ip"]
    with Peer(netns, "echo", ip, 6401), etran.tcp.connect((ip, 6401), timeout=10) as sock:
        rtts = round_trips(sock.sendall, sock.recv, int(rounds))
    with Peer(netns, "sink", ip, 6402) as sink:
        sock = etran.tcp.connect((ip, 6402), timeout=60)
        data = bytes(int(size))
        start = time.perf_counter()
        sock.sendall(data)
        sock.close()
        sink.expect("done")
        rate = len(data) / (time.perf_counter() - start)
    print(json.dumps({"rtts": rtts, "rate": rate}))


def receive_all(accept: Callable[[], Any], size: int, who: str) -> float:
    """Goodput of one connection from `accept` until the server has read everything."""
    conn, _ = accept()
    start = time.perf_counter()
    got = 0
    with conn:
        while chunk := conn.recv(1 << 16):
            got += len(chunk)
    seconds = time.perf_counter() - start
    assert got == size, f"the {who} server read {got} of {size} bytes"
    return size / seconds


def linux_server_receive(a: Host, b: Host, port: int, size: int) -> float:
    """Bulk the other way: a Linux client on b sends to a Linux server on a; goodput until
    the server has read everything."""
    with a.entered():
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((a.ip, port))
        listener.listen()
        listener.settimeout(10)
        with Peer(b.netns, "send", a.ip, port, size):
            return receive_all(listener.accept, size, "Linux")


def etran_server_receive(topo: Topology, a: Host, b: Host, port: int, size: int) -> float:
    """The same with etran's TCP as the server on a (its ACKs made by the gen hook)."""
    with TcpStack(topo, a.name) as stack, a.entered(), stack.listen(port) as listener:
        listener.settimeout(10)
        with Peer(b.netns, "send", a.ip, port, size):
            def accept() -> Any:
                conn, peer = listener.accept()
                conn.settimeout(60)
                return conn, peer
            return receive_all(accept, size, "etran")


def afxdp_ceiling(a: Host, b: Host, frames: int) -> float:
    frame = eth(ipv4(udp(bytes(22), sport=9, dport=9, src=a.ip, dst=b.ip), src=a.ip, dst=b.ip),
                src=a.mac, dst=b.mac)
    with XskSocket(a.interface) as xsk:
        start = time.perf_counter()
        sent = 0
        while sent < frames:
            sent += xsk.send([frame] * min(64, frames - sent))
        xsk.flush()
        return frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2000, help="request/response round trips")
    parser.add_argument("--mib", type=int, default=8, help="bulk transfer size in MiB")
    parser.add_argument("--frames", type=int, default=50000, help="AF_XDP ceiling frames")
    parser.add_argument("--peer", nargs="+", help=argparse.SUPPRESS)   # host b (`Peer`)
    parser.add_argument("--app", nargs=3, help=argparse.SUPPRESS)      # `through_daemon`
    args = parser.parse_args()
    if args.peer:
        peer_main(*args.peer)
        return
    if args.app:
        app_main(*args.app)
        return
    size = args.mib << 20
    with Topology("two-hosts") as topo:
        a, b = topo.host("a"), topo.host("b")
        linux_rtt, linux_rate = linux_client(a, b, 6001, args.rounds, size)
        etran_rtt, etran_rate = etran_client(topo, a, b, 6101, args.rounds, size)
        linux_in = linux_server_receive(a, b, 6201, size)
        etran_in = etran_server_receive(topo, a, b, 6301, size)
        ceiling = afxdp_ceiling(a, b, args.frames)
    daemon_rtt, daemon_rate = through_daemon(args.rounds, size)
    print(f"etran TCP against Linux TCP, two hosts, Linux echo server on b; {args.rounds} "
          f"64-byte round trips, {args.mib} MiB bulk\n")
    print("| | etran TCP | Linux TCP | etran / Linux |")
    print("| --- | --- | --- | --- |")
    for name, p in (("request/response p50", 50), ("request/response p99", 99)):
        e, lx = pct(etran_rtt, p), pct(linux_rtt, p)
        print(f"| {name} | {e:.1f} us | {lx:.1f} us | {e / lx:.2f} |")
    for name, p in (("request/response p50, through the daemon", 50),
                    ("request/response p99, through the daemon", 99)):
        e, lx = pct(daemon_rtt, p), pct(linux_rtt, p)
        print(f"| {name} | {e:.1f} us | {lx:.1f} us | {e / lx:.2f} |")
    print(f"| bulk goodput, a sends | {etran_rate / 1e6:.1f} MB/s | {linux_rate / 1e6:.1f} MB/s "
          f"| {etran_rate / linux_rate:.3f} |")
    print(f"| bulk goodput, a sends, through the daemon | {daemon_rate / 1e6:.1f} MB/s | "
          f"{linux_rate / 1e6:.1f} MB/s | {daemon_rate / linux_rate:.3f} |")
    print(f"| bulk goodput, a receives | {etran_in / 1e6:.1f} MB/s | {linux_in / 1e6:.1f} MB/s "
          f"| {etran_in / linux_in:.3f} |")
    print(f"\nAF_XDP from Python, 64-byte frames: {ceiling:,.0f} frames/s; at one {MSS}-byte "
          f"segment per frame that is {ceiling * MSS / 1e6:.1f} MB/s; etran's bulk goodput "
          f"is {etran_rate / (ceiling * MSS):.2f} of it")
    print(f"request/response medians: etran {statistics.median(etran_rtt):.1f} us, "
          f"Linux {statistics.median(linux_rtt):.1f} us")


if __name__ == "__main__":
    main()

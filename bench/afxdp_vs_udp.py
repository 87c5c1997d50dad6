"""AF_XDP sockets against plain UDP sockets between two hosts, in the same run.

Both hosts run `to_app` (bench_transport.py), which hands UDP frames for port 9005 to the
host's AF_XDP socket. Throughput: a burst of N 64-byte frames from A to B, A sending in
chunks of 64 and B draining between chunks (one Python thread), timed until B has them all.
Latency: ping-pong, A sends one frame, B receives it and answers, A receives the answer;
median and 99th percentile round trip. The UDP pair does exactly the same with sendto and
recvfrom on a socket per host. Results are reported with the AF_XDP/UDP ratio.

Run as root: ``.venv/bin/python bench/afxdp_vs_udp.py [--frames N] [--samples S]``.
"""
from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etran.pipeline import compile_file  # noqa: E402
from etran.runtime.afxdp import XskSocket  # noqa: E402
from etran.runtime.loader import load_object  # noqa: E402
from etran.runtime.topology import Host, Topology  # noqa: E402
from etran.testing.packets import eth, ipv4, udp  # noqa: E402

PORT = 9005


def frame_from(src: Host, dst: Host, payload: bytes) -> bytes:
    return eth(ipv4(udp(payload, sport=PORT, dport=PORT, src=src.ip, dst=dst.ip), src=src.ip,
                    dst=dst.ip), src=src.mac, dst=dst.mac)


def burst(send: Callable[[list[bytes]], object], drain: Callable[[], int], frames: list[bytes],
          chunk: int = 64, timeout: float = 10.0) -> float:
    """Frames per second: send in chunks, drain the receiver in between, until all arrived."""
    got = 0
    start = time.perf_counter()
    for i in range(0, len(frames), chunk):
        send(frames[i:i + chunk])
        got += drain()
    while got < len(frames):
        got += drain()
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"received {got} of {len(frames)}")
    return len(frames) / (time.perf_counter() - start)


def udp_drainer(sock: socket.socket) -> Callable[[], int]:
    """A drain for `burst`: reads every datagram waiting on the non-blocking `sock`."""
    def drain() -> int:
        n = 0
        try:
            while True:
                sock.recvfrom(2048)
                n += 1
        except BlockingIOError:
            return n
    return drain


def ping_pong(round_trip: Callable[[], None], samples: int) -> tuple[float, float]:
    for _ in range(20):
        round_trip()  # warm up
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        round_trip()
        times.append((time.perf_counter() - start) * 1e6)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=50000)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    elf = compile_file(ROOT / "bench" / "bench_transport.py").elf
    with Topology("two-hosts") as topo:
        a, b = topo.host("a"), topo.host("b")
        objects = {}
        for host in (a, b):
            objects[host.name] = topo.own(load_object(elf, f"bench_{host.name}"), host.name)
            topo.attach(host.name, objects[host.name].programs["to_app"])
        payload = bytes(22)  # 64-byte frames
        with XskSocket(a.interface) as xa, XskSocket(b.interface) as xb:
            xa.register(objects["a"].maps["app_sockets"])
            xb.register(objects["b"].maps["app_sockets"])
            frames = [frame_from(a, b, payload)] * args.frames
            xsk_rate = burst(xa.send, lambda: len(xb.recv(256, timeout=0)), frames)
            reply = frame_from(b, a, payload)

            def xsk_round_trip() -> None:
                xa.send([frames[0]])
                xb.recv(1, timeout=1.0)
                xb.send([reply])
                xa.recv(1, timeout=1.0)

            xsk_latency = ping_pong(xsk_round_trip, args.samples)

        with a.udp_socket(PORT + 1, buffer_bytes=64 << 20) as ua, \
                b.udp_socket(PORT + 1, buffer_bytes=64 << 20) as ub:
            ub.setblocking(False)
            to_b = (b.ip, PORT + 1)

            def udp_send(batch: list[bytes]) -> None:
                for _ in batch:
                    ua.sendto(payload, to_b)

            udp_rate = burst(udp_send, udp_drainer(ub), frames)
            ub.setblocking(True)
            ub.settimeout(1.0)
            to_a = (a.ip, PORT + 1)

            def udp_round_trip() -> None:
                ua.sendto(payload, to_b)
                ub.recvfrom(2048)
                ub.sendto(payload, to_a)
                ua.recvfrom(2048)

            udp_latency = ping_pong(udp_round_trip, args.samples)

    print(f"AF_XDP (copy mode) vs UDP sockets, two hosts, 64-byte frames; {args.frames}-frame "
          f"burst, {args.samples} round trips\n")
    print("| | AF_XDP | UDP | AF_XDP / UDP |")
    print("| --- | --- | --- | --- |")
    print(f"| frames/s | {xsk_rate:,.0f} | {udp_rate:,.0f} | {xsk_rate / udp_rate:.2f} |")
    print(f"| round trip, median | {xsk_latency[0]:.1f} us | {udp_latency[0]:.1f} us | "
          f"{xsk_latency[0] / udp_latency[0]:.2f} |")
    print(f"| round trip, p99 | {xsk_latency[1]:.1f} us | {udp_latency[1]:.1f} us | "
          f"{xsk_latency[1] / udp_latency[1]:.2f} |")


if __name__ == "__main__":
    main()

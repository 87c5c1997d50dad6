"""Egress and gen on mainline Linux: which mechanism runs ``@egress``, and what each hook costs.

Mainline Linux has no egress hook for AF_XDP frames, so the runtime must run a transport's
``@egress`` program some other way before a frame leaves the host. Candidates, all measured
here on the same two-host topology, with B's interface running a sink that counts and drops
the frames (so the stack's cost on B does not blur the comparison):

  run+packet  one BPF_PROG_RUN per frame as if the frame arrived on A's interface (verdict
              and finished frame come back), then the XDP_TX'd frame leaves through an
              AF_PACKET socket bound to A's interface (what etran's Egress does)
  native      the application's AF_XDP socket transmits on a veth pair inside host A whose
              far end runs a native build of the same @egress (etran.runtime.native: XDP_TX
              there becomes a redirect to A's uplink)
  run+xsk     the same run per frame, then the frames go out in a batch through an AF_XDP
              TX ring on A's interface

(Live-frames runs, BPF_F_TEST_XDP_LIVE_FRAMES, where the kernel honours the verdict itself,
were measured at 18.6 us per frame on a kernel that allowed them; some kernels refuse them
with EPERM, so etran does not use them; docs/runtime.md.)

For each: throughput (a burst of N frames, from the first send until B has counted all N)
and latency (one frame at a time, from the send call until B's counter moves). Then the gen
path: ``Gen.run`` making K frames in one round.

Run as root: ``.venv/bin/python bench/egress_mechanisms.py [--frames N] [--samples S]``.
"""
from __future__ import annotations

import argparse
import socket
import statistics
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etran.pipeline import check_file, compile_file, compile_program  # noqa: E402
from etran.runtime import netns  # noqa: E402
from etran.runtime.afxdp import XskSocket  # noqa: E402
from etran.runtime.hooks import Egress, Gen  # noqa: E402
from etran.runtime.loader import LoadedObject, load_object  # noqa: E402
from etran.runtime.native import NativeEgress  # noqa: E402
from etran.runtime.topology import Host, Topology  # noqa: E402
from etran.runtime.transmit import context_for  # noqa: E402
from etran.testing.packets import eth, ipv4, udp  # noqa: E402

COUNTERS = struct.Struct("<3Q")  # stamped, sunk, generated
XDP_TX = 3


def frame_from(src: Host, dst: Host, size: int) -> bytes:
    payload = bytes(max(4, size - 42))  # 14 + 20 + 8 bytes of headers
    return eth(ipv4(udp(payload, sport=9000, dport=9000, src=src.ip, dst=dst.ip), src=src.ip,
                    dst=dst.ip), src=src.mac, dst=dst.mac)


class Bench:
    def __init__(self, topo: Topology, a_obj: LoadedObject, b_obj: LoadedObject) -> None:
        self.topo, self.a_obj, self.b_obj = topo, a_obj, b_obj
        self.a, self.b = topo.host("a"), topo.host("b")

    def sunk(self) -> int:
        raw = self.b_obj.maps["counters"].lookup(bytes(4))
        assert raw is not None
        return int(COUNTERS.unpack(raw)[1])

    def reset(self) -> None:
        self.b_obj.maps["counters"].update(bytes(4), bytes(COUNTERS.size))

    def wait_sunk(self, count: int, timeout: float = 10.0) -> float:
        deadline = time.perf_counter() + timeout
        while self.sunk() < count:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"B counted {self.sunk()} of {count} frames")
        return time.perf_counter()

    def throughput(self, send: Callable[[list[bytes]], object], frames: list[bytes],
                   chunk: int = 64) -> float:
        """Frames per second from the first send until B has counted them all."""
        self.reset()
        start = time.perf_counter()
        for i in range(0, len(frames), chunk):
            send(frames[i:i + chunk])
        end = self.wait_sunk(len(frames))
        return len(frames) / (end - start)

    def latency(self, send: Callable[[list[bytes]], object], frame: bytes,
                samples: int) -> tuple[float, float]:
        """Median and 99th percentile microseconds from one send until B counts it."""
        self.reset()
        times = []
        for i in range(samples):
            start = time.perf_counter()
            send([frame])
            times.append((self.wait_sunk(i + 1, 2.0) - start) * 1e6)
        times.sort()
        return statistics.median(times), times[int(len(times) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20000, help="burst size (throughput)")
    parser.add_argument("--samples", type=int, default=500, help="latency samples")
    parser.add_argument("--size", type=int, default=64, help="frame size in bytes")
    parser.add_argument("--gen", type=int, default=2000, help="frames gen makes in one round")
    args = parser.parse_args()

    elf = compile_file(ROOT / "bench" / "bench_transport.py").elf
    native_elf = compile_program(check_file(ROOT / "bench" / "bench_transport.py"),
                                 native_egress=True).elf
    with Topology("two-hosts") as topo:
        a_obj = topo.own(load_object(elf, "bench_a"), "a")
        b_obj = topo.own(load_object(elf, "bench_b"), "b")
        topo.attach("b", b_obj.programs["sink"])
        bench = Bench(topo, a_obj, b_obj)
        a = bench.a
        frames = [frame_from(a, bench.b, args.size)] * args.frames
        one = frames[0]
        stamp = a_obj.programs["stamp"]
        results: list[tuple[str, float, tuple[float, float], str]] = []

        with Egress(stamp, a.interface) as egress:
            results.append(("run+packet", bench.throughput(egress.send, frames),
                            bench.latency(egress.send, one, args.samples),
                            "every verdict honoured: XDP_TX sent, XDP_REDIRECT back to the "
                            "application, XDP_DROP dropped"))

        native_obj = topo.own(load_object(native_elf, "bench_a_native"), "a")
        with NativeEgress(native_obj.maps, native_obj.programs["stamp"], a.interface) as path:
            results.append(("native", bench.throughput(path.send, frames),
                            bench.latency(path.send, one, args.samples),
                            "every verdict honoured, by the kernel; cannot be bypassed"))

        ctx = context_for(a.interface)
        with XskSocket(a.interface) as xsk, netns.Entry(a.netns) as entry:
            def run_then_xsk(batch: list[bytes]) -> None:
                with entry.entered():
                    out = [r.data for r in (stamp.test_run(f, ctx=ctx) for f in batch)
                           if r.retval == XDP_TX]
                xsk.send(out)
            results.append(("run+xsk", bench.throughput(run_then_xsk, frames),
                            bench.latency(run_then_xsk, one, args.samples),
                            "the application's own socket sends; one socket per queue"))

        # the gen path: K frames in one round
        config = struct.pack("<6s6sIII", a.mac_bytes, bench.b.mac_bytes,
                             int.from_bytes(socket.inet_aton(a.ip), "big"),
                             int.from_bytes(socket.inet_aton(bench.b.ip), "big"),
                             args.gen)
        with Gen(a_obj.programs["burst"], a.interface, max_frames=args.gen) as gen:
            gen_times = []
            for _ in range(5):
                a_obj.maps["config"].update(bytes(4), config)
                bench.reset()
                start = time.perf_counter()
                made = gen.run()
                end = bench.wait_sunk(made)
                gen_times.append((end - start) / made * 1e6)

    print(f"egress mechanisms: {args.frames}-frame burst, {args.size}-byte frames, latency "
          f"over {args.samples} single frames\n")
    print("| mechanism | frames/s | us/frame | latency median | latency p99 | note |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, rate, (median, p99), note in results:
        print(f"| {name} | {rate:,.0f} | {1e6 / rate:.1f} | {median:.1f} us | {p99:.1f} us "
              f"| {note} |")
    print(f"\ngen (Gen.run: a test run, then one send(2), per frame): "
          f"{statistics.median(gen_times):.1f} us per generated frame, {args.gen} frames per "
          "round, median of 5 rounds")


if __name__ == "__main__":
    main()

"""The test transport between two hosts over AF_XDP, against plain UDP sockets in the same run.

`examples/reliable_datagram.py` runs on hosts a and b of a two-hosts topology, as in
tests/netns/test_reliable_transport.py but with a clean link: a's application sends DATA
frames through AF_XDP and a's @egress (sequence numbers, the retransmission timer), b's
@xdp delivers them in order to b's application socket, b's @gen acknowledges after each
receive batch, and a's @xdp consumes the ACKs.

* Throughput: N frames sent in chunks of 64, b's application draining between chunks
  (one Python thread plays both applications), timed until b has every frame and a's
  `snd_una` says every frame is acknowledged.
* Latency: one frame at a time, from a's send call to b's application having it
  (one-way; both ends are in this process, on one clock); median and 99th percentile.

The UDP pair does the same with `sendto`/`recvfrom` on one socket per host. The report
gives the ratios, and the per-frame cost of the egress path and the gen path measured on
the way (time spent in them, per frame through egress and per gen round).

Run as root: ``.venv/bin/python bench/reliable_vs_udp.py [--frames N] [--samples S]``.
"""
from __future__ import annotations

import argparse
import statistics
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etran.pipeline import compile_file  # noqa: E402
from etran.runtime.afxdp import XskSocket  # noqa: E402
from etran.runtime.hooks import Egress, Endpoint, Gen  # noqa: E402
from etran.runtime.loader import load_object  # noqa: E402
from etran.runtime.topology import Host, Topology  # noqa: E402
from etran.runtime.typed import typed_maps  # noqa: E402
from etran.testing.packets import eth, ipv4, udp  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from afxdp_vs_udp import burst, udp_drainer  # noqa: E402

HEADER = struct.Struct("!BBHIII")   # Datagram in reliable_datagram.py
FLOW = 3


def frame(src: Host, dst: Host, port: int, payload: bytes) -> bytes:
    return eth(ipv4(udp(payload, sport=port, dport=port, src=src.ip, dst=dst.ip), src=src.ip,
                    dst=dst.ip), src=src.mac, dst=dst.mac)


class Timed:
    """Wraps a callable and adds up the time spent in it."""

    def __init__(self, fn: Callable[..., object]) -> None:
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args: object, **kw: object) -> object:
        start = time.perf_counter()
        try:
            return self.fn(*args, **kw)
        finally:
            self.seconds += time.perf_counter() - start


def percentiles(samples: list[float]) -> tuple[float, float]:
    samples.sort()
    return statistics.median(samples), samples[max(int(len(samples) * 0.99) - 1, 0)]


def run_transport(a: Host, b: Host, objects: dict, program: object, constants: dict[str, int],
                  frames: int, samples: int) -> dict[str, float]:
    port = constants["PORT"]
    tx_flows = typed_maps(objects["a"], program)["tx_flows"]   # type: ignore[arg-type]
    payload = bytes(22)

    # egress writes the sequence number and the epoch: every DATA frame starts the same
    data = frame(a, b, port, HEADER.pack(constants["DATA"], 0, 0, FLOW, 0, 0) + payload)

    with XskSocket(a.interface) as xsk_a, XskSocket(b.interface) as xsk_b, \
            Egress(objects["a"].programs["send"], a.interface) as egress, \
            Gen(objects["b"].programs["ack"], b.interface) as gen:
        xsk_a.register(objects["a"].maps["app_sockets"])
        xsk_b.register(objects["b"].maps["app_sockets"])
        app_a, app_b = Endpoint(xsk_a, egress=egress), Endpoint(xsk_b, gen=gen)
        egress_run, gen_run = Timed(egress.send), Timed(gen.run)
        egress.send, gen.run = egress_run, gen_run   # type: ignore[method-assign]

        def snd_una() -> int:
            return int(tx_flows[{"peer": b.ip, "flow": FLOW}]["snd_una"])

        sent = got = 0
        start = time.perf_counter()
        while sent < frames:
            chunk = min(64, frames - sent)
            sent += app_a.send([data] * chunk)
            got += len(app_b.recv(256, timeout=0))
        deadline = start + 30
        while (got < frames or snd_una() < frames) and time.perf_counter() < deadline:
            got += len(app_b.recv(256, timeout=0.001))
            app_a.recv(64, timeout=0)        # a go-back notice would land here
        elapsed = time.perf_counter() - start
        if got < frames or snd_una() < frames:
            raise SystemExit(f"the transport delivered {got} of {frames} frames "
                             f"({snd_una()} acknowledged) in 30 s")
        egress_us = egress_run.seconds / max(egress.frames, 1) * 1e6
        gen_us = gen_run.seconds / max(gen.rounds, 1) * 1e6
        acks, rounds = gen.sent, gen.rounds

        one_way = []
        for i in range(samples + 20):
            t0 = time.perf_counter()
            app_a.send([data])
            while not app_b.recv(1, timeout=1.0):
                pass
            if i >= 20:                      # the first 20 warm up
                one_way.append((time.perf_counter() - t0) * 1e6)
    median, p99 = percentiles(one_way)
    return {"rate": frames / elapsed, "median": median, "p99": p99, "egress_us": egress_us,
            "gen_us": gen_us, "acks": acks, "rounds": rounds}


def run_udp(a: Host, b: Host, port: int, frames: int, samples: int) -> dict[str, float]:
    payload = bytes(HEADER.size + 22)
    with a.udp_socket(port + 1, buffer_bytes=64 << 20) as ua, \
            b.udp_socket(port + 1, buffer_bytes=64 << 20) as ub:
        to_b = (b.ip, port + 1)
        ub.setblocking(False)

        def send(batch: list[bytes]) -> None:
            for datagram in batch:
                ua.sendto(datagram, to_b)

        rate = burst(send, udp_drainer(ub), [payload] * frames, timeout=30.0)
        ub.setblocking(True)
        ub.settimeout(1.0)
        one_way = []
        for i in range(samples + 20):
            t0 = time.perf_counter()
            ua.sendto(payload, to_b)
            ub.recvfrom(2048)
            if i >= 20:
                one_way.append((time.perf_counter() - t0) * 1e6)
    median, p99 = percentiles(one_way)
    return {"rate": rate, "median": median, "p99": p99}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    rd = compile_file(ROOT / "examples" / "reliable_datagram.py")
    constants = rd.program.constants
    with Topology("two-hosts") as topo:
        a, b = topo.host("a"), topo.host("b")
        objects = {h: topo.own(load_object(rd.elf, f"rd_{h}"), h) for h in ("a", "b")}
        for h in ("a", "b"):
            topo.attach(h, objects[h].programs["receive"])
        t = run_transport(a, b, objects, rd.program, constants, args.frames, args.samples)
        u = run_udp(a, b, constants["PORT"], args.frames, args.samples)
    print(f"reliable_datagram over AF_XDP vs UDP sockets, two hosts, {HEADER.size + 22}-byte "
          f"payloads; {args.frames} frames, {args.samples} one-way samples\n")
    print("| | transport (AF_XDP) | UDP | transport / UDP |")
    print("| --- | --- | --- | --- |")
    print(f"| frames/s delivered | {t['rate']:,.0f} | {u['rate']:,.0f} | "
          f"{t['rate'] / u['rate']:.2f} |")
    print(f"| one way, median | {t['median']:.1f} us | {u['median']:.1f} us | "
          f"{t['median'] / u['median']:.2f} |")
    print(f"| one way, p99 | {t['p99']:.1f} us | {u['p99']:.1f} us | "
          f"{t['p99'] / u['p99']:.2f} |")
    print(f"\negress path: {t['egress_us']:.1f} us per frame; gen path: {t['gen_us']:.1f} us "
          f"per round ({t['rounds']:.0f} rounds, one after each receive batch, sent "
          f"{t['acks']:.0f} ACKs for {args.frames} frames). The one-way time includes b's "
          "gen round: the application gets its frames when the round is over.")


if __name__ == "__main__":
    main()

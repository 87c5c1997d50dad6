"""The benchmarks still run: each script, at a small size, prints its report with numbers.

The numbers themselves are recorded in docs/ from full-size runs; here a benchmark that
broke (an API it uses changed, a topology it builds fails) fails the suite instead of
rotting until the next measurement.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.netns, pytest.mark.kernel]

NUMBER = r"[\d,]+(?:\.\d+)?"


def bench(kernel: None, script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def ratio_rows(out: str) -> dict[str, float]:
    """Table rows `| name | a | b | a/b |` -> name: the ratio, checked against a and b."""
    rows = {}
    for m in re.finditer(rf"^\| ([^|]+?) \| ({NUMBER})(?: us)? \| ({NUMBER})(?: us)? \| "
                         rf"({NUMBER}) \|$", out, re.M):
        a, b, r = (float(m[i].replace(",", "")) for i in (2, 3, 4))
        assert a > 0 and b > 0 and r == pytest.approx(a / b, rel=0.02, abs=0.01), m[0]
        rows[m[1]] = r
    return rows


def test_reliable_transport_against_udp(kernel: None) -> None:
    out = bench(kernel, "reliable_vs_udp.py", "--frames", "600", "--samples", "40")
    rows = ratio_rows(out)
    assert set(rows) == {"frames/s delivered", "one way, median", "one way, p99"}
    assert re.search(rf"egress path: {NUMBER} us per frame; gen path: {NUMBER} us per round",
                     out)


def test_afxdp_against_udp(kernel: None) -> None:
    out = bench(kernel, "afxdp_vs_udp.py", "--frames", "600", "--samples", "40")
    assert set(ratio_rows(out)) == {"frames/s", "round trip, median", "round trip, p99"}


def test_differential_throughput(kernel: None) -> None:
    out = bench(kernel, "differential.py", "--cases", "100", "--example", "dctcp")
    for hook in ("rx", "tx", "rto_expired"):    # cases/s of hypothesis and of --sweep
        assert re.search(rf"^dctcp\s+{hook}\s+\w+\s+100\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+0$",
                         out, re.M), out
    assert "DCTCP ingress:" in out
    assert re.search(rf"sweep / hypothesis cases per second: median {NUMBER}", out), out


def test_tcp_against_linux(kernel: None) -> None:
    out = bench(kernel, "tcp_vs_linux.py", "--rounds", "50", "--mib", "1", "--frames", "2000")
    assert set(ratio_rows(out)) == {"request/response p50", "request/response p99",
                                    "request/response p50, through the daemon",
                                    "request/response p99, through the daemon"}
    for direction in ("a sends", "a receives", "a sends, through the daemon"):
        assert re.search(rf"^\| bulk goodput, {direction} \| {NUMBER} MB/s \| {NUMBER} MB/s "
                         rf"\| {NUMBER} \|$", out, re.M), out
    assert re.search(rf"AF_XDP from Python, 64-byte frames: {NUMBER} frames/s", out)


def test_homa_incast(kernel: None, tmp_path: Path) -> None:
    plot = tmp_path / "cdf.svg"
    out = bench(kernel, "homa_incast.py", "--senders", "2", "--rpcs", "6", "--out", str(plot))
    rows = {m[1]: m for m in re.finditer(
        rf"^(etran Homa|Homa daemon|etran TCP|Linux TCP) +({NUMBER})ms +({NUMBER})ms +(\S+)ms +"
        rf"({NUMBER}) MB/s +(\d+)$", out, re.M)}
    assert set(rows) == {"etran Homa", "Homa daemon", "etran TCP", "Linux TCP"}, out
    assert all(float(m[2]) > 0 and m[6] == "0" for m in rows.values()), out
    assert re.search(rf"Homa / Linux TCP: short p99 {NUMBER}x", out)
    assert re.search(r"\(steal\) during each: etran Homa \d+%, Homa daemon \d+%, etran TCP \d+%, "
                     r"Linux TCP \d+%$", out, re.M), out
    assert plot.read_text().count("<polyline") == 4

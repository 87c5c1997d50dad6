"""`etran rpc` and `etran status` on a run of `etran up etran/transports/homa.py`: a server
and a client in two hosts' namespaces, latency percentiles per size, the RPCs in flight
listed by `etran status`, and one-line refusals."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from etran.runtime import runs

from .conftest import started_run

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[2]
HOMA = ROOT / "etran" / "transports" / "homa.py"


def etran_cmd(*argv: str, netns_name: str | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
    prefix = ["ip", "netns", "exec", netns_name] if netns_name else []
    return subprocess.run([*prefix, sys.executable, "-m", "etran", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def background(*argv: str, netns_name: str | None) -> subprocess.Popen[str]:
    prefix = ["ip", "netns", "exec", netns_name] if netns_name else []
    return subprocess.Popen([*prefix, sys.executable, "-m", "etran", *argv], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def gone(processes: list[subprocess.Popen[str]]) -> str:
    """What the processes that already ended said (for a failure's message): a client
    that is no longer in `etran status` may have exited."""
    out = []
    for p in processes:
        if p.poll() is not None:
            stdout, stderr = p.communicate()
            out.append(f"\n{' '.join(map(str, p.args))} exited {p.returncode}:\n{stdout}{stderr}")
    return "".join(out)


def run_section(status: str, run_id: str) -> list[str]:
    """The lines `etran status` shows for run `run_id` (another test session may have runs
    of its own up)."""
    out: list[str] = []
    for line in status.splitlines():
        if line.startswith(("run ", "leftovers")):
            inside = line.startswith(f"run {run_id}:")
        if out or line.startswith(f"run {run_id}:"):
            if not inside:
                break
            out.append(line)
    return out


@pytest.fixture
def run(kernel: None) -> Iterator[runs.RunRecord]:
    up = etran_cmd("up", str(HOMA))
    assert up.returncode == 0, up.stderr
    assert "homa_gen: accepted by the kernel verifier" in up.stdout
    record = started_run(up.stdout)
    try:
        yield record
    finally:
        assert etran_cmd("down", "--run", record.run_id).returncode == 0
        assert not runs.find_objects(record.run_id)


def test_rpc_reports_percentiles_and_status_lists_rpcs(run: runs.RunRecord,
                                                       tmp_path: Path) -> None:
    """A server that takes 3 s to answer: `etran status` shows the RPC at both ends. Then
    requests of three sizes, with their percentiles, while `etran trace` records the
    server's grants. (Both through the hosts' daemons.)"""
    a, b = run.hosts["a"], run.hosts["b"]
    processes = [background("rpc", "-l", "4001", "--count", "1", "--delay", "3",
                            netns_name=b["netns"])]
    try:
        time.sleep(1.5)
        processes.append(background("rpc", b["ip"], "4001", "--sizes", "300000", "--count",
                                    "1", netns_name=a["netns"]))
        for _ in range(40):                  # until the request is whole at the server
            status = etran_cmd("status")
            assert status.returncode == 0, status.stderr
            if "server working" in status.stdout:
                break
            time.sleep(0.1)
        # `status` reads host a, then host b: the client's line in the output that first
        # shows the request whole at b was read before the last of it left a. Read again.
        status = etran_cmd("status")
        assert status.returncode == 0, status.stderr
        lines = run_section(status.stdout, run.run_id)
        assert lines.count("    Homa RPCs: 1 active") == 2, status.stdout + gone(processes)
        assert any("client sending; out 300,000/300,000 sent, 300,000 granted" in line
                   for line in lines), status.stdout + gone(processes)
        assert any("port 4001: server working; in 300,000/300,000 received, 300,000 granted,"
                   " 0 remaining" in line for line in lines), status.stdout
        out, err = processes[1].communicate(timeout=60)
        assert processes[1].returncode == 0, err
        assert out.splitlines()[1].split()[:3] == ["300000", "1", "0"], out
        processes[0].communicate(timeout=30)
        processes.append(background("rpc", "-l", "4000", "--count", "6",
                                    netns_name=b["netns"]))
        svg = tmp_path / "grants.svg"
        processes.append(background("trace", run.run_id, "--host", "b", "--seconds", "6",
                                    "--out", str(svg), netns_name=None))
        time.sleep(1.5)
        done = etran_cmd("rpc", b["ip"], "4000", "--sizes", "100,5000,200000", "--count", "2",
                         netns_name=a["netns"])
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].split() == ["size", "done", "failed", "p50", "ms", "p90", "ms", "p99",
                                    "ms", "max", "ms"]
        rows = {int(line.split()[0]): line.split() for line in lines[1:]}
        assert sorted(rows) == [100, 5000, 200000]
        assert all(row[1:3] == ["2", "0"] and float(row[3]) > 0 for row in rows.values())
        served, _ = processes[2].communicate(timeout=60)
        assert processes[2].returncode == 0 and "answered 6 requests" in served
        traced, err = processes[3].communicate(timeout=60)
        assert processes[3].returncode == 0, err
        assert re.search(r"\d+ GRANTs to 2 messages written to", traced), traced
        assert svg.read_text().count('class="message"') == 4      # granted and received
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.communicate()
    status = etran_cmd("status")
    assert run_section(status.stdout, run.run_id).count("    Homa RPCs: 0 active") == 2, \
        status.stdout


def test_a_server_without_count_answers_until_interrupted(run: runs.RunRecord) -> None:
    """`etran rpc -l PORT` answers every request until interrupted (0 is its --count
    default), not the client's default of 100: a client's 150 requests all get answers."""
    a, b = run.hosts["a"], run.hosts["b"]
    server = background("rpc", "-l", "4002", netns_name=b["netns"])
    try:
        time.sleep(1.5)
        done = etran_cmd("rpc", b["ip"], "4002", "--count", "150", netns_name=a["netns"])
        assert done.returncode == 0, done.stderr + gone([server])
        assert done.stdout.splitlines()[1].split()[:3] == ["100", "150", "0"], done.stdout
        assert server.poll() is None, gone([server])          # still serving
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_rpc_refuses_bad_arguments_in_one_line(run: runs.RunRecord) -> None:
    a = run.hosts["a"]
    for argv, expected in (
            (["10.111.0.2"], "give HOST PORT"),
            (["10.111.0.2", "http"], "'http' is not a port number"),
            (["10.111.0.2", "4000", "--sizes", "0"], "Homa messages are 1 to 1,075,200 bytes"),
            (["10.111.0.2", "4000", "--sizes", "a,b"], "give sizes in bytes"),
            (["10.111.0.2", "4000", "--count", "0"], "--count must be at least 1")):
        done = etran_cmd("rpc", *argv, netns_name=a["netns"])
        assert done.returncode == 2, (argv, done.stderr)
        assert done.stderr.count("\n") == 1 and expected in done.stderr, done.stderr
    outside = etran_cmd("rpc", "10.111.0.2", "4000")
    assert outside.returncode == 2 and "not inside a host of a run" in outside.stderr

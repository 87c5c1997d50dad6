"""Homa's per-host daemon (`etran.homa.hostd`): applications without any capability make
RPCs of every size through it, several at once on the same host, and a client killed
mid-RPC leaves nothing of it in the data path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from etran.runtime import runs

from .test_nc import ROOT, etran_cmd
from .test_rpc_cli import HOMA, run_section

pytestmark = pytest.mark.netns

SERVER = """
import hashlib, sys
import etran.homa.app as homa
with homa.server(int(sys.argv[1])) as server:
    print("serving", flush=True)
    for _ in range(int(sys.argv[2])):
        request = server.receive(timeout=60)
        server.reply(request, hashlib.sha256(request.payload).digest())
"""

CLIENT = """
import hashlib, json, os, sys
import etran.homa.app as homa
caps = [ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("CapEff")]
sizes = [int(s) for s in sys.argv[3].split(",")]
with homa.client() as client:
    requests = [os.urandom(n) for n in sizes]
    futures = [client.call_async((sys.argv[1], int(sys.argv[2])), r) for r in requests]
    ok = [f.result(30) == hashlib.sha256(r).digest() for f, r in zip(futures, requests)]
print(json.dumps({"capeff": int(caps[0], 16), "ok": ok}))
"""


@pytest.fixture(scope="module")
def run(kernel: None) -> Iterator[runs.RunRecord]:
    up = etran_cmd("up", str(HOMA))
    assert up.returncode == 0, up.stderr.decode()
    assert b"Homa daemons:" in up.stdout
    run_id = up.stdout.decode().split("etran: run ")[1].split()[0]
    record = runs.find_run(run_id)
    assert record is not None and {d["what"] for d in record.daemons} == {"homa"}
    try:
        yield record
    finally:
        assert etran_cmd("down", "--run", record.run_id).returncode == 0
        assert not runs.find_objects(record.run_id) and not os.path.exists(record.run_dir)
        for daemon in record.daemons:
            assert runs._start_time(daemon["pid"]) != daemon["pid_start"]


def app(run: runs.RunRecord, host: str, code: str, *args: str) -> subprocess.Popen[str]:
    """`code` inside `host`, every capability dropped."""
    return subprocess.Popen(
        ["ip", "netns", "exec", run.hosts[host]["netns"], "setpriv", "--bounding-set=-all",
         "--inh-caps=-all", "--ambient-caps=-all", sys.executable, "-c", code, *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})


def serving(proc: subprocess.Popen[str]) -> subprocess.Popen[str]:
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "serving":
        _out, err = proc.communicate(timeout=30)
        raise AssertionError(f"the server did not start: {err}")
    return proc


def finished(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    return out


def test_rpcs_of_every_size_without_privilege(run: runs.RunRecord) -> None:
    """A server on b and a client on a, neither with any capability: requests of 1 byte to
    1 MB, all at once, each answered with its SHA-256."""
    sizes = [1, 100, 1400, 1500, 10_000, 100_000, 1_000_000]
    server = serving(app(run, "b", SERVER, "7000", str(len(sizes))))
    got = json.loads(finished(app(run, "a", CLIENT, run.hosts["b"]["ip"], "7000",
                                  ",".join(map(str, sizes)))).splitlines()[-1])
    finished(server)
    assert got["capeff"] == 0 and got["ok"] == [True] * len(sizes)


HANDLER_SERVER = """
import hashlib, sys, threading
import etran.homa.app as homa
done = threading.Event()
answered = []

def handler(request):
    if request.payload == b"raise":
        raise KeyError("no such record")
    answered.append(threading.get_ident())
    if len(answered) == int(sys.argv[2]):
        done.set()
    return hashlib.sha256(request.payload).digest()

with homa.server(int(sys.argv[1]), handler=handler) as server:
    try:
        server.receive(timeout=1)
    except ValueError as exc:
        print("receive refused:", exc, file=sys.stderr)
    print("serving", flush=True)
    done.wait(60)
    print(server.handler_errors, len(set(answered)), threading.get_ident() in answered)
"""


def test_a_server_with_a_handler_answers_where_requests_arrive(run: runs.RunRecord) -> None:
    """`homa.server(port, handler=)` through the daemon: every request answered by the
    handler on the thread reading the channel (one thread, not the application's main
    one); a request whose handler raises is counted and left unanswered (its client times
    out), and the others are answered."""
    sizes = [1, 1400, 100_000, 1_000_000]
    server = serving(app(run, "b", HANDLER_SERVER, "7004", str(len(sizes))))
    failing = """
import sys
import etran.homa.app as homa
with homa.client() as client:
    try:
        client.call((sys.argv[1], 7004), b"raise", timeout=0.5)
    except TimeoutError:
        print("timed out")
"""
    assert finished(app(run, "a", failing, run.hosts["b"]["ip"])).strip() == "timed out"
    got = json.loads(finished(app(run, "a", CLIENT, run.hosts["b"]["ip"], "7004",
                                  ",".join(map(str, sizes)))).splitlines()[-1])
    assert got["ok"] == [True] * len(sizes)
    out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert out.split() == ["1", "1", "False"], out
    assert "receive refused" in err and "raised KeyError('no such record')" in err


def test_two_clients_and_two_servers_share_hosts(run: runs.RunRecord) -> None:
    servers = [serving(app(run, "b", SERVER, str(port), "4")) for port in (7001, 7002)]
    clients = [app(run, "a", CLIENT, run.hosts["b"]["ip"], str(port), "100,20000,300000,50")
               for port in (7001, 7002)]
    for client in clients:
        assert json.loads(finished(client).splitlines()[-1])["ok"] == [True] * 4
    for server in servers:
        finished(server)


def test_status_shows_the_daemons(run: runs.RunRecord) -> None:
    status = etran_cmd("status").stdout.decode()
    for daemon in run.daemons:
        assert f"Homa daemon: pid {daemon['pid']}, serving" in status, status


def rpcs_active(run: runs.RunRecord) -> list[str]:
    status = etran_cmd("status")
    assert status.returncode == 0, status.stderr.decode()
    return [line for line in run_section(status.stdout.decode(), run.run_id)
            if line.startswith("    Homa RPCs:")]


def test_a_killed_client_leaves_nothing_in_the_data_path(run: runs.RunRecord) -> None:
    """A client killed while its 1 MB request waits for an answer that never comes (the
    server takes its time): its daemon abandons the call, and both hosts' RPC tables are
    empty again (the server's by its timers)."""
    slow = """
import sys, time
import etran.homa.app as homa
with homa.server(7003) as server:
    print("serving", flush=True)
    server.receive(timeout=60)
    time.sleep(60)
"""
    server = serving(app(run, "b", slow, ""))
    waiting = """
import sys
import etran.homa.app as homa
client = homa.client()
future = client.call_async((sys.argv[1], 7003), bytes(1_000_000))
print("called", flush=True)
future.result(60)
"""
    client = app(run, "a", waiting, run.hosts["b"]["ip"])
    assert client.stdout is not None and client.stdout.readline().strip() == "called"
    deadline = time.monotonic() + 20
    while rpcs_active(run) != ["    Homa RPCs: 1 active"] * 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rpcs_active(run) == ["    Homa RPCs: 1 active"] * 2
    client.send_signal(signal.SIGKILL)
    client.communicate(timeout=10)
    server.send_signal(signal.SIGKILL)
    server.communicate(timeout=10)
    deadline = time.monotonic() + 30
    while rpcs_active(run) != ["    Homa RPCs: 0 active"] * 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert rpcs_active(run) == ["    Homa RPCs: 0 active"] * 2
    test_rpcs_of_every_size_without_privilege(run)          # and the daemons serve on

"""Nothing outlives a run: a killed process's topology is found and removed by teardown_all,
and SIGTERM tears a topology down from inside the process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from etran.runtime import runs

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import sys, time
from etran.pipeline import compile_file
from etran.runtime.afxdp import XskSocket
from etran.runtime.loader import load_object
from etran.runtime.topology import Topology
topo = Topology("incast:2")
obj = topo.own(load_object(compile_file(sys.argv[1]).elf), "r")
topo.attach("r", obj.programs["rx"])
xsk = XskSocket(topo.host("r").interface)
xsk.register(obj.maps["xsks"])
print(topo.run_id, flush=True)
while True:
    time.sleep(1)
"""


def start_child() -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(ROOT / "tests/netns/xsk_echo.py")], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    if not run_id:
        child.kill()
        _, err = child.communicate()
        pytest.fail(f"the child failed to build its topology: {err}")
    return child, run_id


def test_teardown_all_removes_what_a_killed_process_left(kernel: None) -> None:
    child, run_id = start_child()
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=10)
    left = runs.find_objects(run_id)
    assert len(left.namespaces) == 4  # sw, s0, s1, r: nothing ran to remove them
    (record,) = [r for r in runs.list_runs() if r.run_id == run_id]
    assert record.is_orphan()
    removed = runs.teardown_all(orphans_only=True)
    assert f"run {run_id} (incast:2, pid {child.pid})" in removed
    assert not runs.find_objects(run_id)
    assert run_id not in {r.run_id for r in runs.list_runs()}


def test_sigterm_tears_the_topology_down_in_the_process(kernel: None) -> None:
    child, run_id = start_child()
    assert runs.find_objects(run_id).namespaces
    child.send_signal(signal.SIGTERM)
    child.communicate(timeout=10)
    assert child.returncode == 128 + signal.SIGTERM
    assert not runs.find_objects(run_id)
    assert run_id not in {r.run_id for r in runs.list_runs()}


TCP_CHILD = """
import socket, threading
from etran.runtime.topology import Topology
from etran.tcp import TcpStack
topo = Topology("two-hosts")
a, b = topo.host("a"), topo.host("b")
with b.entered():
    server = socket.socket()
server.bind((b.ip, 5001))
server.listen()
def drain():
    conn, _ = server.accept()
    while conn.recv(1 << 16):
        pass
threading.Thread(target=drain, daemon=True).start()
stack = TcpStack(topo, "a")
sock = stack.connect((b.ip, 5001), timeout=10)
sock.sendall(bytes(1 << 20))
print(topo.run_id, flush=True)
while True:
    sock.sendall(bytes(1 << 16))
"""


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_a_tcp_transfer_killed_midway_leaves_nothing(kernel: None, how: str) -> None:
    """A process moving data over etran's TCP, killed in the middle: SIGTERM tears its
    topology down in the process; after SIGKILL, teardown_all finds and removes all of it
    (namespaces, the attached program, the state file)."""
    child = subprocess.Popen([sys.executable, "-c", TCP_CHILD], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    if not run_id:
        child.kill()
        pytest.fail(f"the child failed: {child.communicate()[1]}")
    assert runs.find_objects(run_id).namespaces
    child.send_signal(getattr(signal, how))
    child.communicate(timeout=20)
    if how == "SIGKILL":
        assert len(runs.find_objects(run_id).namespaces) == 3    # sw, a, b
        runs.teardown_all(orphans_only=True)
    assert not runs.find_objects(run_id)
    assert run_id not in {r.run_id for r in runs.list_runs()}

"""`etran nc` from a shell inside a host of `etran up etran/transports/tcp.py`, against plain
Linux sockets on the other host, both ways, and its one-line refusals."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from etran.runtime import netns, runs

from .conftest import started_run

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[2]
TCP = ROOT / "etran" / "transports" / "tcp.py"


def etran_cmd(*argv: str, netns_name: str | None = None, stdin: bytes = b"",
              timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    prefix = ["ip", "netns", "exec", netns_name] if netns_name else []
    return subprocess.run([*prefix, sys.executable, "-m", "etran", *argv], cwd=ROOT,
                          input=stdin, capture_output=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def tcp_run(*options: str) -> Iterator[runs.RunRecord]:
    up = etran_cmd("up", str(TCP), *options)
    assert up.returncode == 0, up.stderr.decode()
    record = started_run(up.stdout)
    try:
        yield record
    finally:
        assert etran_cmd("down", "--run", record.run_id).returncode == 0
        assert not runs.find_objects(record.run_id)
        assert not os.path.exists(record.run_dir)


@pytest.fixture
def run(kernel: None) -> Iterator[runs.RunRecord]:
    """A run of etran's TCP with its per-host daemons (`etran nc` goes through them)."""
    yield from tcp_run()


@pytest.fixture
def run_without_daemon(kernel: None) -> Iterator[runs.RunRecord]:
    """`--no-daemon`: `etran nc` (or a test) runs the host's stack in its own process."""
    yield from tcp_run("--no-daemon")


def linux_listener(record: runs.RunRecord, host: str, port: int) -> socket.socket:
    with netns.enter(record.hosts[host]["netns"]):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((record.hosts[host]["ip"], port))
    sock.listen()
    sock.settimeout(30)
    return sock


def test_nc_sends_a_file_to_linux_and_prints_the_answer(run: runs.RunRecord) -> None:
    data = os.urandom(1 << 20)
    listener = linux_listener(run, "b", 5001)
    got: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            while chunk := conn.recv(1 << 16):
                got.append(chunk)
            conn.sendall(hashlib.sha256(b"".join(got)).hexdigest().encode())
    thread = threading.Thread(target=serve)
    thread.start()
    with listener:
        done = etran_cmd("nc", run.hosts["b"]["ip"], "5001", netns_name=run.hosts["a"]["netns"],
                         stdin=data)
        thread.join(30)
    assert done.returncode == 0, done.stderr.decode()
    assert b"".join(got) == data
    assert done.stdout == hashlib.sha256(data).hexdigest().encode()


def test_nc_listens_for_a_linux_client(run: runs.RunRecord) -> None:
    """`etran nc -l` answers a Linux client; meanwhile `etran status` lists the connection
    at b (and none at a), with what the handshake agreed to."""
    nc = _listening_nc(run)
    try:
        _talk_to(nc, run)
    finally:
        _reap(nc)


def test_an_nc_killed_mid_transfer_leaves_the_host_usable(
        run_without_daemon: runs.RunRecord) -> None:
    """Without a daemon, SIGKILL takes an `etran nc` down with its programs on its veth pair
    (the pair itself stays in the host); the next `etran nc` on that host replaces the pair,
    forgets the dead one's connections and works; the dead one's Linux peer then gets a RST,
    not a hang; and `etran down` (the fixture) leaves nothing. (With a daemon the RST goes
    at once: tests/netns/test_hostd.py.)"""
    run = run_without_daemon
    b = run.hosts["b"]
    nc = _listening_nc(run)
    try:
        client = _connect_to_nc(run)
        client.sendall(os.urandom(64 << 10))
        nc.kill()
        nc.wait(10)
    finally:
        _reap(nc)
    assert {"etran-app", "etran-egr"} <= set(netns.interfaces(b["netns"]))   # left behind
    with client:
        # what the dead one never acknowledged, Linux resends with its back-off
        test_nc_listens_for_a_linux_client(run)
        client.settimeout(30)
        with pytest.raises(ConnectionResetError):
            while client.recv(1 << 16):
                pass


def _listening_nc(run: runs.RunRecord) -> subprocess.Popen[bytes]:
    """`etran nc -l 5002` started inside host b."""
    return subprocess.Popen(["ip", "netns", "exec", run.hosts["b"]["netns"], sys.executable,
                             "-m", "etran", "nc", "-l", "5002"], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _reap(nc: subprocess.Popen[bytes]) -> None:
    if nc.poll() is None:
        nc.kill()
    for pipe in (nc.stdin, nc.stdout, nc.stderr):
        if pipe is not None and not pipe.closed:
            pipe.close()
    nc.wait()


def _connect_to_nc(run: runs.RunRecord) -> socket.socket:
    """A Linux client on host a connected to the `etran nc -l` on b, once it listens (a
    refused socket cannot connect again: a new one for every try)."""
    for _ in range(100):
        with netns.enter(run.hosts["a"]["netns"]):
            attempt = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        attempt.settimeout(30)
        try:
            attempt.connect((run.hosts["b"]["ip"], 5002))
            return attempt
        except ConnectionRefusedError:
            attempt.close()
            threading.Event().wait(0.1)
    raise AssertionError("etran nc -l never listened")


def _talk_to(nc: subprocess.Popen[bytes], run: runs.RunRecord) -> None:
    b = run.hosts["b"]
    client = _connect_to_nc(run)
    with client:
        client.sendall(b"from a Linux client\n")
        # egress runs natively: the pair is there, with tcp_tx on its far end
        assert {"etran-app", "etran-egr"} <= set(netns.interfaces(b["netns"]))
        # `etran status` lists the connection at b, with what the handshake agreed to
        a_port = client.getsockname()[1]
        for _ in range(50):
            status = etran_cmd("status")
            assert status.returncode == 0, status.stderr.decode()
            if b"20 B in" in status.stdout:
                break
            threading.Event().wait(0.1)
        lines = status.stdout.decode().splitlines()
        assert "    TCP connections: 1" in lines and "    TCP connections: 0" in lines, lines
        (line,) = [ln for ln in lines if ln.startswith(f"      {run.hosts['a']['ip']}:{a_port} ")]
        # Linux offers window scaling, timestamps and SACK, and asks for no ECN (tcp_ecn=2)
        assert re.search(r"; window scale \d+/0, timestamps, SACK$", line), line
        assert "port 5002: established; 0 B in flight" in line and "; 20 B in, 0 B out;" in line
        client.shutdown(socket.SHUT_WR)
        out, err = nc.communicate(b"answer from etran\n", timeout=30)
        assert client.recv(100) == b"answer from etran\n"
        assert client.recv(100) == b""
    assert nc.returncode == 0, err.decode()
    assert out == b"from a Linux client\n"


def test_nc_refusals_are_one_line(run: runs.RunRecord, tmp_path: Path) -> None:
    a = run.hosts["a"]
    refused = etran_cmd("nc", run.hosts["b"]["ip"], "5999", netns_name=a["netns"])
    assert refused.returncode == 1
    assert refused.stderr.decode().strip() == f"etran nc: {run.hosts['b']['ip']}:5999: " \
        "Connection refused: connect to 10.111.0.2:5999"
    outside = etran_cmd("nc", "10.111.0.2", "5001")
    assert outside.returncode == 2
    assert "is not inside a host of a run" in outside.stderr.decode()
    bad_port = etran_cmd("nc", "10.111.0.2", "http", netns_name=a["netns"])
    assert bad_port.returncode == 2 and b"'http' is not a port number" in bad_port.stderr
    assert b"Traceback" not in refused.stderr + outside.stderr + bad_port.stderr


def test_trace_records_a_transfer_and_plots_it(kernel: None, tmp_path: Path) -> None:
    """`etran trace` over an `etran nc` transfer on a link marking every 10th segment: an SVG
    with the four panels, a line per panel for the connection, alpha below 1 and some ACKs
    echoing CE."""
    link = ROOT / "etran" / "transports" / "tcp_link.py"
    up = etran_cmd("up", str(TCP), "--link", f"a={link}")
    assert up.returncode == 0, up.stderr.decode()
    record = started_run(up.stdout)
    try:
        from etran.runtime.maps import Map
        with Map.from_pinned(os.path.join(record.pin_dir, "link-a", "maps", "config")) as cfg:
            cfg.update(bytes(4), bytes(8) + (10).to_bytes(4, "little") + bytes(4))  # mark 1/10
        out = tmp_path / "trace.svg"
        tracer = subprocess.Popen([sys.executable, "-m", "etran", "trace", record.run_id,
                                   "--host", "a", "--seconds", "4", "--out", str(out)],
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True)
        assert tracer.stdout is not None
        assert "recording host a" in tracer.stdout.readline()
        listener = linux_listener(record, "b", 5003)

        def drain() -> None:
            conn, _ = listener.accept()
            with conn:
                while conn.recv(1 << 16):
                    pass
        thread = threading.Thread(target=drain)
        thread.start()
        with listener:
            sent = etran_cmd("nc", record.hosts["b"]["ip"], "5003",
                             netns_name=record.hosts["a"]["netns"], stdin=bytes(2 << 20))
            thread.join(30)
        assert sent.returncode == 0, sent.stderr.decode()
        rest, err = tracer.communicate(timeout=30)
        assert tracer.returncode == 0, err
        assert re.search(r"etran trace: (\d+) ACKs of 1 connection written to", rest), rest
        import xml.etree.ElementTree as ET
        root = ET.parse(out).getroot()
        ns = {"s": "http://www.w3.org/2000/svg"}
        lines = root.findall("s:polyline", ns)
        assert len(lines) == 4                        # cwnd, alpha, srtt, marked fraction
        counts = {len(line.get("points", "").split()) for line in lines}
        assert len(counts) == 1 and counts.pop() > 100
        texts = [t.text or "" for t in root.findall("s:text", ns)]
        alpha_max = float(next(t for t in texts if t.startswith("DCTCP alpha")).split("max ")[1]
                          .rstrip(")"))
        marked_max = float(next(t for t in texts if t.startswith("CE-echoed")).split("max ")[1]
                           .rstrip(")"))
        assert alpha_max < 1 and 0 < marked_max <= 1
    finally:
        assert etran_cmd("down", "--run", record.run_id).returncode == 0


def test_up_pins_the_native_egress_so_applications_compile_nothing(
        run_without_daemon: runs.RunRecord) -> None:
    """`etran up` builds @egress for the native path too and pins it beside each host's
    maps; a stack started in the run takes it from there (no compiler) and carries data."""
    from etran.runtime import pinned
    run = run_without_daemon
    from etran.tcp import stack as tcp_stack
    native = Path(runs.reachable_pin_dir(run)) / "b" / "native"
    assert sorted(p.name for p in native.iterdir()) == ["__etran_uplink", "tcp_tx"]
    native_build = (str(tcp_stack.TRANSPORT), True)     # compiled_transport's cache key
    pinned._compiled.pop(native_build, None)
    listener = linux_listener(run, "a", 5003)
    with listener, tcp_stack.TcpStack.in_run(run, "b") as stack:
        assert stack.native is not None and native_build not in pinned._compiled
        with stack.connect((run.hosts["a"]["ip"], 5003), timeout=5) as sock:
            conn, _ = listener.accept()
            with conn:
                sock.sendall(b"through the pinned native egress")
                assert conn.recv(100) == b"through the pinned native egress"


def test_status_inside_a_host_shows_the_run_and_no_leftovers(run: runs.RunRecord) -> None:
    """`etran status` from a shell inside a host (`ip netns exec`) sees the host's own
    `etran-*` interfaces: they are not leftovers of the machine's namespace."""
    status = etran_cmd("status", netns_name=run.hosts["a"]["netns"])
    assert status.returncode == 0, status.stderr.decode()
    assert f"run {run.run_id}: two-hosts".encode() in status.stdout
    assert b"leftovers" not in status.stdout, status.stdout.decode()

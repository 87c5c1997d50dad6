"""The per-host TCP daemon (`etran.tcp.hostd`) that `etran up etran/transports/tcp.py`
starts: applications without any capability reach a Linux peer through it, cannot reach the
transport's state, share a host, listen, and a killed one leaves its peer a RST."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from etran.runtime import runs

from .test_nc import ROOT, linux_listener, tcp_run

pytestmark = pytest.mark.netns

# An application of a host, as a user without privilege would run it: inside the host's
# namespace (entered by root, as `ip netns exec` does), then every capability dropped. It
# looks for a way to the transport's state or around it: the run's pinned `conns` map by
# every path there is to it (the bpf(2) call that opens a pin), a BPF map of its own, an
# AF_XDP socket and a raw packet socket of its own (either would send frames that never
# pass `tcp_tx`).
APP = """
import ctypes, errno, hashlib, json, os, socket, sys
import etran.tcp
caps = [ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("CapEff")]
out = {"capeff": int(caps[0], 16)}
libc = ctypes.CDLL(None, use_errno=True)

def bpf(cmd, attr):
    fd = libc.syscall(321, cmd, ctypes.byref(attr), ctypes.sizeof(attr))   # SYS_bpf
    return "ok" if fd >= 0 else errno.errorcode[ctypes.get_errno()]

out["pins"] = {}
for path in json.loads(sys.argv[2]):
    name = ctypes.c_char_p(path.encode())
    attr = (ctypes.c_uint64 * 2)(ctypes.cast(name, ctypes.c_void_p).value, 0)
    out["pins"][path] = bpf(7, attr)                                       # BPF_OBJ_GET
out["map_create"] = bpf(0, (ctypes.c_uint32 * 5)(2, 4, 4, 1, 0))           # an array map
for name, family, kind in (("af_xdp", 44, socket.SOCK_RAW), ("af_packet", socket.AF_PACKET,
                                                               socket.SOCK_RAW)):
    try:
        socket.socket(family, kind).close()
        out[name] = "ok"
    except OSError as exc:
        out[name] = errno.errorcode[exc.errno]
{body}
print(json.dumps(out))
"""

ECHO = """
data = os.urandom(int(sys.argv[3]))
with etran.tcp.connect((sys.argv[1], 5001), timeout=10) as sock:
    sock.sendall(data)
    sock.shutdown(1)
    got = bytearray()
    while chunk := sock.recv(1 << 16):
        got += chunk
out["sent"] = hashlib.sha256(data).hexdigest()
out["echoed"] = hashlib.sha256(got).hexdigest()
"""

LISTEN = """
with etran.tcp.listen(5005) as listener:
    print("listening", flush=True)
    conn, peer = listener.accept()
    got = bytearray()
    with conn:
        while chunk := conn.recv(1 << 16):
            got += chunk
        conn.sendall(hashlib.sha256(got).hexdigest().encode())
out["peer"] = peer[0]
"""


KEEP = """
with etran.tcp.listen(5005) as listener:
    print("listening", flush=True)
    conn, peer = listener.accept()
    import time
    time.sleep(60)                  # reads nothing: the test kills it
"""


@pytest.fixture(scope="module")
def run(kernel: None) -> Iterator[runs.RunRecord]:
    """One run for the module (each test leaves the daemons as it found them: that they
    serve on after a killed application is one of the tests)."""
    runs_of = tcp_run()
    record = next(runs_of)
    assert {d["host"] for d in record.daemons} == set(record.hosts)
    yield record
    with pytest.raises(StopIteration):      # `etran down`, which checks the run directory
        next(runs_of)                       # and every object are gone
    for daemon in record.daemons:           # and the daemons with them
        assert runs._start_time(daemon["pid"]) != daemon["pid_start"]


def app(run: runs.RunRecord, host: str, body: str, *args: str,
        privileged: bool = False) -> subprocess.Popen[str]:
    conns = os.path.join(run.pin_dir, host, "maps", "conns")
    # the pins as this process sees them, and through the roots of this process and of the
    # host's daemon (`ip netns exec` gives a command a /sys without bpffs)
    daemon = next(d["pid"] for d in run.daemons if d["host"] == host)
    paths = json.dumps([conns, f"/proc/{os.getpid()}/root{conns}", f"/proc/{daemon}/root{conns}"])
    drop = [] if privileged else ["setpriv", "--bounding-set=-all", "--inh-caps=-all",
                                  "--ambient-caps=-all"]
    return subprocess.Popen(
        ["ip", "netns", "exec", run.hosts[host]["netns"], *drop, sys.executable, "-c",
         APP.replace("{body}", body), args[0] if args else "", paths, *args[1:]],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})


def result(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return json.loads(out.splitlines()[-1])  # type: ignore[no-any-return]


def echo_server(run: runs.RunRecord, connections: int) -> threading.Thread:
    """A Linux echo server on b: each connection's bytes back, until its FIN."""
    listener = linux_listener(run, "b", 5001)

    def serve() -> None:
        with listener:
            threads = []
            for _ in range(connections):
                conn, _ = listener.accept()

                def echo(conn: socket.socket = conn) -> None:
                    conn.settimeout(30)         # (an accepted socket blocks for ever)
                    with conn:
                        while chunk := conn.recv(1 << 16):
                            conn.sendall(chunk)
                threads.append(threading.Thread(target=echo, daemon=True))
                threads[-1].start()
            for thread in threads:
                thread.join(60)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_an_application_without_privilege_talks_to_linux_and_cannot_reach_the_state(
        run: runs.RunRecord) -> None:
    """No capability at all (CapEff 0): no path to the run's pinned `conns` map opens (not
    there in its mount namespace, or refused through another process's root), it cannot
    make BPF objects or packet sockets of its own; and 512 KiB go to a Linux echo server on
    b and come back byte for byte."""
    server = echo_server(run, 1)
    got = result(app(run, "a", ECHO, run.hosts["b"]["ip"], str(512 << 10)))
    server.join(30)
    assert got["capeff"] == 0
    assert set(got["pins"].values()) <= {"ENOENT", "EACCES", "EPERM"}, got["pins"]
    assert got["map_create"] == got["af_xdp"] == got["af_packet"] == "EPERM"
    assert got["sent"] == got["echoed"]


def test_nobody_talks_to_linux_through_the_daemon(
        run: runs.RunRecord, unprivileged: Callable[..., subprocess.CompletedProcess[str]]
        ) -> None:
    """The same as user nobody (uid 65534, no capability), on a copy of etran that imports
    no data-path code: the pins are out of its reach too, and its bytes come back."""
    server = echo_server(run, 1)
    conns = os.path.join(run.pin_dir, "a", "maps", "conns")
    done = unprivileged(APP.replace("{body}", ECHO), run.hosts["b"]["ip"],
                        json.dumps([conns, f"/proc/{os.getpid()}/root{conns}"]), str(256 << 10),
                        netns=run.hosts["a"]["netns"])
    server.join(30)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.splitlines()[-1])
    assert got["capeff"] == 0 and os.getuid() != 65534
    assert set(got["pins"].values()) <= {"ENOENT", "EACCES", "EPERM"}, got["pins"]
    assert got["map_create"] == got["af_xdp"] == got["af_packet"] == "EPERM"
    assert got["sent"] == got["echoed"]


def test_a_privileged_process_could_reach_it(run: runs.RunRecord) -> None:
    """The checks above can fail: root with its capabilities, in the same namespace, opens
    the map through this process's root and makes its own map and sockets."""
    got = result(app(run, "a", "", privileged=True))
    assert got["capeff"] != 0 and "ok" in got["pins"].values(), got["pins"]
    assert got["map_create"] == got["af_xdp"] == got["af_packet"] == "ok"


def test_two_applications_share_a_host(run: runs.RunRecord) -> None:
    """Two processes of host a at once (a process running the stack itself takes the
    host's AF_XDP queue alone), each with its own connection to the Linux server."""
    server = echo_server(run, 2)
    apps = [app(run, "a", ECHO, run.hosts["b"]["ip"], str(256 << 10)) for _ in range(2)]
    outs = [result(p) for p in apps]
    server.join(30)
    assert all(o["sent"] == o["echoed"] for o in outs)
    assert outs[0]["sent"] != outs[1]["sent"]


def listens(proc: subprocess.Popen[str]) -> subprocess.Popen[str]:
    """`proc` once it says it listens (or its error, when it ends instead)."""
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "listening":
        _out, err = proc.communicate(timeout=30)
        raise AssertionError(f"the application did not listen: {err}")
    return proc


def linux_client(run: runs.RunRecord, port: int) -> socket.socket:
    from etran.runtime import netns
    for _ in range(100):
        with netns.enter(run.hosts["a"]["netns"]):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(30)
        try:
            sock.connect((run.hosts["b"]["ip"], port))
            return sock
        except ConnectionRefusedError:
            sock.close()
            time.sleep(0.1)
    raise AssertionError(f"nothing listened on port {port}")


def test_an_application_listens_through_the_daemon(run: runs.RunRecord) -> None:
    """`etran.tcp.listen` and `accept` (the connection's channel passed as SCM_RIGHTS): a
    Linux client on a sends 256 KiB and gets their SHA-256 back."""
    listening = listens(app(run, "b", LISTEN))
    data = os.urandom(256 << 10)
    with linux_client(run, 5005) as client:
        client.sendall(data)
        client.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := client.recv(100):
            answer += chunk
    assert answer == hashlib.sha256(data).hexdigest().encode()
    assert result(listening)["peer"] == run.hosts["a"]["ip"]


def test_nc_needs_no_privilege(run: runs.RunRecord) -> None:
    """`etran nc` inside a host with a daemon is an application like any other: with every
    capability dropped it sends a file to a Linux server and prints the answer."""
    data = os.urandom(128 << 10)
    listener = linux_listener(run, "b", 5007)
    got: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        conn.settimeout(30)
        with conn:
            while chunk := conn.recv(1 << 16):
                got.append(chunk)
            conn.sendall(hashlib.sha256(b"".join(got)).hexdigest().encode())
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with listener:
        done = subprocess.run(
            ["ip", "netns", "exec", run.hosts["a"]["netns"], "setpriv", "--bounding-set=-all",
             "--inh-caps=-all", "--ambient-caps=-all", sys.executable, "-m", "etran", "nc",
             run.hosts["b"]["ip"], "5007"], cwd=ROOT, input=data, capture_output=True,
            timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
        thread.join(30)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == hashlib.sha256(data).hexdigest().encode()


def test_a_close_right_after_a_large_send_delivers_it_all(run: runs.RunRecord) -> None:
    """`sendall` of 4 MiB and `close` at once: the goodbye waits for room behind the data
    (a channel closed without it would mean a dead application and a RST), so the Linux
    peer reads every byte and then our FIN."""
    bulk = """
data = os.urandom(int(sys.argv[3]))
sock = etran.tcp.connect((sys.argv[1], 5011), timeout=10)
sock.sendall(data)
sock.close()
out["sent"] = hashlib.sha256(data).hexdigest()
"""
    listener = linux_listener(run, "b", 5011)
    got = bytearray()

    def sink() -> None:
        conn, _ = listener.accept()
        conn.settimeout(30)
        with conn:
            while chunk := conn.recv(1 << 16):
                got.extend(chunk)
    thread = threading.Thread(target=sink, daemon=True)
    thread.start()
    with listener:
        sent = result(app(run, "a", bulk, run.hosts["b"]["ip"], str(4 << 20)))["sent"]
        thread.join(60)
    assert not thread.is_alive() and len(got) == 4 << 20
    assert hashlib.sha256(got).hexdigest() == sent


def test_status_shows_the_daemons(run: runs.RunRecord) -> None:
    from .test_nc import etran_cmd
    status = etran_cmd("status").stdout.decode()
    for daemon in run.daemons:
        assert f"TCP daemon: pid {daemon['pid']}, serving" in status, status


def test_a_refused_connect_is_connection_refused(run: runs.RunRecord) -> None:
    body = """
try:
    etran.tcp.connect((sys.argv[1], 5999), timeout=5)
except ConnectionRefusedError as exc:
    out["refused"] = exc.errno
"""
    assert result(app(run, "a", body, run.hosts["b"]["ip"]))["refused"] == 111


def test_a_killed_application_leaves_its_peer_a_reset_and_the_daemon_serves_on(
        run: runs.RunRecord) -> None:
    """SIGKILL to an application mid-transfer: its channel closes without a goodbye, so
    the daemon resets the connection (as Linux does for a process that dies with unread
    data) and the Linux peer sees ECONNRESET at once, not a hang; the next application on
    the same host listens on the same port and works."""
    listening = listens(app(run, "b", KEEP))
    client = linux_client(run, 5005)
    with client:
        client.sendall(os.urandom(64 << 10))
        time.sleep(0.2)
        listening.send_signal(signal.SIGKILL)
        listening.communicate(timeout=10)
        with pytest.raises(ConnectionResetError):
            while client.recv(1 << 16):
                pass
    test_an_application_listens_through_the_daemon(run)


def worker_pid(run: runs.RunRecord, host: str) -> int:
    """The daemon proper of `host` (the child its supervisor runs)."""
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"--worker" in argv and run.run_id.encode() in argv and host.encode() in argv:
            return int(pid)
    raise AssertionError(f"no daemon worker for host {host}")


def test_a_killed_daemon_is_started_again_and_its_peers_get_a_reset(
        run: runs.RunRecord) -> None:
    """SIGKILL to host a's daemon mid-connection: the application's socket fails at once
    (ECONNABORTED), the supervisor starts the daemon again, whose stack clears the dead one's
    connections, so the Linux peer's next segment gets a RST (not retransmissions into
    nothing); and the host serves new applications."""
    listener = linux_listener(run, "b", 5009)
    hold = """
sock = etran.tcp.connect((sys.argv[1], 5009), timeout=10)
sock.sendall(b"before")
print("connected", flush=True)
try:
    sock.recv(100)
    out["after"] = "data"
except OSError as exc:
    out["after"] = errno.errorcode[exc.errno]
"""
    holder = app(run, "a", hold, run.hosts["b"]["ip"], privileged=True)
    with listener:
        conn, _ = listener.accept()
    with conn:
        conn.settimeout(10)
        assert conn.recv(100) == b"before"      # through the daemon before it is killed
        assert holder.stdout is not None and holder.stdout.readline().strip() == "connected"
        before = worker_pid(run, "a")
        os.kill(before, signal.SIGKILL)
        assert result(holder)["after"] == "ECONNABORTED"
        deadline = time.monotonic() + 20
        with pytest.raises(ConnectionResetError):
            while time.monotonic() < deadline:      # Linux's segments, until one is reset
                conn.sendall(b"are you there?")
                time.sleep(0.2)
    assert worker_pid(run, "a") != before
    test_two_applications_share_a_host(run)

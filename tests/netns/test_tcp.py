"""etran's TCP against the kernel's own TCP on the other host, and against itself.

Every transfer is checked end to end (SHA-256 of random bytes), and the Linux side's own
counters, read in its namespace, must show no checksum error, no RST and no retransmission
timeout on a clean link."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from etran.pipeline import compile_file
from etran.runtime import netns
from etran.runtime.attach import attached_program_ids
from etran.runtime.loader import load_object
from etran.runtime.topology import Host, Topology
from etran.runtime.typed import typed_maps
from etran.tcp import TcpSocket, TcpStack
from etran.tcp import segments as sg
from etran.tcp.stack import TRIM_EVERY

pytestmark = pytest.mark.netns

PORT = 5001
BULK = 8 << 20
LINK = Path(__file__).resolve().parents[2] / "etran" / "transports" / "tcp_link.py"


def linux_counters(host: Host) -> dict[str, int]:
    """TCP counters of `host`'s namespace (/proc/net/snmp and /proc/net/netstat)."""
    out: dict[str, int] = {}
    with host.entered():
        for name in ("snmp", "netstat"):
            with open(f"/proc/thread-self/net/{name}") as f:
                lines = f.read().splitlines()
            for head, values in zip(lines[::2], lines[1::2]):
                prefix, *keys = head.split()
                for k, v in zip(keys, values.split()[1:]):
                    out[prefix.rstrip(":") + k] = int(v)
    return out


def clean(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The counters that must not move on a clean link, and how much they moved: no
    checksum error, no RST, no input error, no retransmission timeout. (A rare spurious
    fast retransmit by Linux is seen in the echo test, once in three runs or so, with no
    duplicate ACK found in a capture of what we sent; it is not counted here.)"""
    names = ("TcpInCsumErrors", "TcpOutRsts", "TcpInErrs", "TcpExtTCPTimeouts")
    return {n: after.get(n, 0) - before.get(n, 0) for n in names
            if after.get(n, 0) != before.get(n, 0)}


@dataclass
class Linux:
    """A plain socket server on a host: runs `serve(conn)` for one connection."""

    host: Host
    sock: socket.socket
    thread: threading.Thread | None = None
    error: BaseException | None = None

    def start(self, serve: Callable[[socket.socket], None]) -> None:
        def run() -> None:
            try:
                conn, _ = self.sock.accept()
                conn.settimeout(20)
                with conn:
                    serve(conn)
            except BaseException as exc:
                self.error = exc
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self) -> None:
        assert self.thread is not None
        self.thread.join(30)
        assert not self.thread.is_alive(), "the Linux side did not finish"
        if self.error is not None:
            raise self.error


def linux_socket(host: Host) -> socket.socket:
    with host.entered():
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)


def ipv4_socket(host: Host, timeout: float) -> socket.socket:
    """An AF_PACKET socket on `host`'s interface: it sends frames as if from the host (to
    forge segments) and reads the IPv4 frames the interface sends and receives."""
    with host.entered():
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    try:
        raw.bind((host.ifname, 0x0800))
    except BaseException:
        raw.close()
        raise
    raw.settimeout(timeout)
    return raw


def segments_from(raw: socket.socket, src: str, wait: float) -> list[sg.Segment]:
    """The TCP segments from address `src` that `raw` reads within `wait` seconds (or until
    a read times out)."""
    out: list[sg.Segment] = []
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            seg = sg.parse(raw.recv(2048))
        except TimeoutError:
            break
        if seg is not None and seg.src == src:
            out.append(seg)
    return out


@pytest.fixture
def topo(kernel: None) -> Iterator[Topology]:
    with Topology("two-hosts") as t:
        yield t


@pytest.fixture
def server(topo: Topology) -> Iterator[Linux]:
    b = topo.host("b")
    sock = linux_socket(b)
    sock.bind((b.ip, PORT))
    sock.listen()
    sock.settimeout(20)
    with sock:
        yield Linux(b, sock)


def echo(conn: socket.socket) -> None:
    while data := conn.recv(1 << 16):
        conn.sendall(data)


def drain(into: list[bytes]) -> Callable[[socket.socket], None]:
    def serve(conn: socket.socket) -> None:
        while data := conn.recv(1 << 16):
            into.append(data)
    return serve


def test_one_byte_to_a_linux_socket_and_back(topo: Topology, server: Linux) -> None:
    b = topo.host("b")
    before = linux_counters(b)
    server.start(echo)
    with TcpStack(topo, "a") as stack:
        with stack.connect((b.ip, PORT), timeout=5) as sock:
            sock.sendall(b"x")
            assert sock.recv(10) == b"x"
            entry = stack.connection(sock)
            assert entry is not None and entry["bytes_out"] == 1 and entry["bytes_in"] == 1
        server.join()                     # the server saw our FIN and closed
    assert clean(before, linux_counters(b)) == {}


@pytest.mark.parametrize("native", [True, False], ids=["native-egress", "test-run-egress"])
def test_bulk_to_linux_and_back(topo: Topology, server: Linux, native: bool) -> None:
    """8 MiB from etran to Linux, echoed back: both directions through the data path, with
    egress on either path (native by default; test runs are what `etran nc` uses)."""
    b = topo.host("b")
    data = os.urandom(BULK)
    before = linux_counters(b)
    server.start(echo)
    received = bytearray()
    with TcpStack(topo, "a", native_egress=native) as stack:
        assert (stack.native is not None) == native
        with stack.connect((b.ip, PORT), timeout=20) as sock:
            reader_error: list[BaseException] = []

            def read() -> None:
                try:
                    while len(received) < BULK:
                        chunk = sock.recv(1 << 16)
                        if not chunk:
                            break
                        received.extend(chunk)
                except BaseException as exc:
                    reader_error.append(exc)
            reader = threading.Thread(target=read)
            reader.start()
            sock.sendall(data)
            reader.join(60)
            assert not reader_error, reader_error
        server.join()
        assert stack.counters()["bad_checksum"] == 0
    assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()
    assert clean(before, linux_counters(b)) == {}


def echo_rounds(sock: TcpSocket, rounds: int) -> None:
    """`rounds` 64-byte messages, each back from the echo server before the next."""
    for i in range(rounds):
        message = i.to_bytes(4, "big") * 16
        sock.sendall(message)
        got = b""
        while len(got) < len(message):
            got += sock.recv(len(message) - len(got))
        assert got == message


def test_request_response_acks_ride_on_the_requests(topo: Topology, server: Linux) -> None:
    """Delayed ACKs (RFC 5681 4.2): each echoed response is acknowledged by our next
    request, so 200 round trips make almost no pure ACK (without delaying, one per response),
    every byte arrives, and Linux sees no timeout or RST. (The gen pump looks at its flag,
    where a delayed ACK waits, only every 10 s here: how soon the next request follows a
    response then does not matter, only what the data path asks for at once.)"""
    b = topo.host("b")
    before = linux_counters(b)
    server.start(echo)
    rounds = 200
    with TcpStack(topo, "a") as stack, topo.host("a").entered():
        with stack.connect((b.ip, PORT), timeout=5) as sock:
            stack.pump.interval = 10.0
            acks_before = stack.connection(sock)["acks_sent"]
            echo_rounds(sock, rounds)
            entry = stack.connection(sock)
            assert entry is not None and entry["bytes_in"] == 64 * rounds
            # (a CPU busy elsewhere can make the peer resend now and then: a duplicate ACK,
            # and its wake-up takes the delayed ones waiting; 4 were seen under two hogs)
            assert entry["acks_sent"] - acks_before <= rounds // 20, \
                entry["acks_sent"] - acks_before
        server.join()
    assert clean(before, linux_counters(b)) == {}


def test_a_sender_of_small_messages_keeps_only_what_is_unacknowledged(
        topo: Topology, server: Linux) -> None:
    """What the socket keeps to resend is forgotten once acknowledged, also when every
    call sends one segment: it used to be forgotten only by a call that sent 32 segments or
    waited for the window, so a request/response connection kept all it ever sent."""
    b = topo.host("b")
    server.start(echo)
    with TcpStack(topo, "a") as stack, topo.host("a").entered():
        with stack.connect((b.ip, PORT), timeout=5) as sock:
            echo_rounds(sock, 300)
            # every request but the last few is acknowledged (its echo came back)
            assert len(sock._sendbuf) <= TRIM_EVERY * 64, len(sock._sendbuf)
        server.join()


def voluntary_switches(thread: threading.Thread) -> int:
    """How many times `thread` has blocked (slept, or waited for a lock) so far."""
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    return int(status.split("voluntary_ctxt_switches:")[1].split()[0])


def test_the_stack_s_threads_leave_a_busy_polling_application_alone(
        topo: Topology, server: Linux) -> None:
    """While the application busy-polls for its responses, the stack's own threads (the
    two pumps, the dispatcher) sleep: each wake-up has to take the interpreter lock from
    the spinning thread, and set the round trip's p99 (docs/tcp.md, "The stack's own
    threads"). Looking every 20 ms (pumps) and 5 ms (dispatcher), as they did, they blocked
    111 to 187 times in 1,000 round trips (0.11 to 0.16 s); looking every second and every
    50 ms, 4 to 14 times."""
    b = topo.host("b")
    server.start(echo)
    with TcpStack(topo, "a") as stack, topo.host("a").entered(), \
            stack.connect((b.ip, PORT), timeout=5) as sock:
        threads = (stack.pump._thread, stack.egress_pump._thread, stack._thread)
        echo_rounds(sock, 50)                      # the connection's first moments aside
        before = [voluntary_switches(t) for t in threads]
        start = time.monotonic()
        echo_rounds(sock, 1000)
        seconds = time.monotonic() - start
        blocked = [voluntary_switches(t) - n for t, n in zip(threads, before)]
    server.join()
    # the dispatcher's look every 50 ms, each a few blocks (the lock is taken back from a
    # spinning thread), and the gen pump's round for the odd ACK a response needed at once
    assert sum(blocked) <= 20 + 100 * seconds, (blocked, seconds)


class CountingPoller:
    """Stands in for the stack's poller of the AF_XDP socket: counts the sleeps in poll(2)."""

    def __init__(self, poller: Any) -> None:
        self.poller = poller
        self.sleeps = 0

    def poll(self, timeout: int) -> list[tuple[int, int]]:
        self.sleeps += 1
        return self.poller.poll(timeout)


@pytest.mark.parametrize("busy_poll", [2.0, 0.0])
def test_a_busy_polling_receiver_takes_responses_without_sleeping(
        topo: Topology, server: Linux, busy_poll: float) -> None:
    """`busy_poll`: a thread waiting in `recv` keeps looking at the ring instead of sleeping
    in poll(2) (an idle vCPU's wake-up costs more than a round trip here). With a 2 s spin
    every wait ends with the echo caught spinning, none in poll(2); with 0 none spins."""
    b = topo.host("b")
    server.start(echo)
    rounds = 50
    with TcpStack(topo, "a", busy_poll=busy_poll) as stack, topo.host("a").entered(), \
            stack.connect((b.ip, PORT), timeout=5) as sock:
        counting = CountingPoller(stack._app_poller)
        stack._app_poller = counting  # type: ignore[assignment]
        spin, caught = stack._spin, []

        def counted_spin() -> bool:
            caught.append(spin())
            return caught[-1]
        stack._spin = counted_spin  # type: ignore[method-assign]
        echo_rounds(sock, rounds)
    if busy_poll:
        # (the dispatcher thread may take a round's frames when it holds them first)
        assert all(caught) and counting.sleeps == 0
    else:
        assert not caught


def test_native_egress_lets_nothing_pass_that_tcp_tx_refuses(topo: Topology,
                                                              server: Linux) -> None:
    """On the native path the application's socket is the only way out, and `tcp_tx` is on
    it: a segment forged at a sequence number that is not `snd_nxt`, and one for a
    connection that does not exist, never reach Linux (its segment counter does not move);
    the first comes back to the application as a notice, and the connection carries on."""
    b = topo.host("b")
    server.start(echo)
    with TcpStack(topo, "a") as stack:
        assert stack.native is not None
        with stack.connect((b.ip, PORT), timeout=5) as sock:
            sock.sendall(b"first")
            assert sock.recv(10) == b"first"
            time.sleep(0.05)                   # the last ACKs settle
            entry = stack.connection(sock)
            assert entry is not None
            peer_ip, peer_port, local_port = sock.key
            forged = [sg.build(src_mac=topo.host("a").mac_bytes, dst_mac=b.mac_bytes,
                               src=topo.host("a").ip, dst=peer_ip, sport=sport,
                               dport=peer_port, seq=seq, flags=sg.PSH, payload=b"forged",
                               checksums=False, options=sg.TS_ROOM)
                      for sport, seq in ((local_port, entry["snd_nxt"] + 1000),
                                         (local_port + 1, entry["snd_nxt"]))]
            segs_in = linux_counters(b)["TcpInSegs"]
            with stack._rx_lock:               # the notice is read here, not by the stack
                stack.native.send(forged)
                back = []
                deadline = time.monotonic() + 1
                while not back and time.monotonic() < deadline:
                    back = stack.native.recv_returned(8, timeout=0.1)
            time.sleep(0.05)
            assert linux_counters(b)["TcpInSegs"] == segs_in
            notes = [sg.parse_notice(f) for f in back]
            assert [(n.local_port, n.why, n.resume) for n in notes if n] == \
                [(local_port, sg.NOTICE_RESUME, entry["snd_nxt"])]
            assert stack.connection(sock)["stale"] == entry["stale"] + 1
            sock.sendall(b"second")
            assert sock.recv(10) == b"second"
        server.join()


def test_two_threads_receive_on_two_connections_at_once(topo: Topology) -> None:
    """Whoever waits in `recv` takes the frames off the AF_XDP socket for every connection:
    two threads, each in `recv` on its own connection while the other's data arrives, both
    get all of theirs, in order."""
    b = topo.host("b")
    servers = []
    for port in (PORT, PORT + 1):
        sock = linux_socket(b)
        sock.bind((b.ip, port))
        sock.listen()
        sock.settimeout(20)
        servers.append(Linux(b, sock))
    payloads = [os.urandom(300_000), os.urandom(300_000)]

    def send_all(data: bytes) -> Callable[[socket.socket], None]:
        def serve(conn: socket.socket) -> None:
            for at in range(0, len(data), 1000):   # in pieces, so both streams interleave
                conn.sendall(data[at:at + 1000])
        return serve

    try:
        with TcpStack(topo, "a") as stack:
            conns = [stack.connect((b.ip, PORT + i), timeout=5) for i in range(2)]
            got = [bytearray(), bytearray()]
            errors: list[BaseException] = []

            def read(i: int) -> None:
                try:
                    while chunk := conns[i].recv(1 << 16):
                        got[i].extend(chunk)
                except BaseException as exc:
                    errors.append(exc)
            readers = [threading.Thread(target=read, args=(i,)) for i in range(2)]
            for r in readers:
                r.start()
            for s, data in zip(servers, payloads):
                s.start(send_all(data))
            for s in servers:
                s.join()
            for r in readers:
                r.join(30)
            assert not errors, errors
            assert [bytes(g) for g in got] == payloads
            for c in conns:
                c.close()
    finally:
        for s in servers:
            s.sock.close()


def test_a_linux_client_sends_to_an_etran_server(topo: Topology) -> None:
    """8 MiB from a Linux client; the etran server answers after the client's FIN, and the
    client reads the answer and then the server's FIN."""
    b = topo.host("b")
    before = linux_counters(b)
    data, got = transfer_from_linux(topo, BULK, reply=b"done")
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert clean(before, linux_counters(b)) == {}


@pytest.mark.parametrize("loss", [{}, {"drop_every": 100}, {"drop_every": 400, "burst": 5},
                                  {"mark_every": 10}],
                         ids=["clean", "1-percent", "bursts-of-5", "ce-marks"])
def test_etran_to_etran(topo: Topology, loss: dict[str, int]) -> None:
    """Both ends etran's: the same transfers, on a clean, lossy or marking link."""
    b = topo.host("b")
    data = os.urandom(BULK)
    link = impair(topo, "a", **loss) if loss else None
    with TcpStack(topo, "a") as one, TcpStack(topo, "b") as two, two.listen(PORT) as listener:
        listener.settimeout(5)
        got: list[bytes] = []

        def serve() -> None:
            conn, _ = listener.accept()
            conn.settimeout(20)
            while chunk := conn.recv(1 << 16):
                got.append(chunk)
            conn.close()
        t = threading.Thread(target=serve)
        t.start()
        with one.connect((b.ip, PORT), timeout=20) as sock:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            t.join(30)
            entry = one.connection(sock)
        assert entry is not None
        # Fast retransmit repairs the losses; a retransmission timeout (10 ms at least)
        # is left for a few: with both ends' threads in this one process, an ACK waits
        # for the interpreter whenever the CPUs are busy (up to 4 of 57 losses timed out
        # with two campaigns running, none on a quiet machine). Without the duplicate ACKs
        # every loss event would wait for one: 57 (1%) or 14 (bursts of 5).
        dropped = link["state"][0]["dropped"] if link is not None else 0
        assert entry["timeouts"] <= max(1, dropped // 8), (entry["timeouts"], dropped)
        if link is not None:
            state = link["state"][0]
            assert state["dropped"] + state["marked"] > 0
            if "drop_every" in loss:
                assert entry["fast_retransmits"] >= 1
            if "mark_every" in loss:
                assert entry["ecn_ok"] and entry["alpha"] < 1024
    assert b"".join(got) == data


def until(ready: Callable[[], object], seconds: float = 5.0) -> bool:
    """Whether `ready()` held within `seconds` (looked at every 10 ms)."""
    end = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_close_returns_before_the_peer_closes_and_the_stack_finishes_it(
        topo: Topology, server: Linux) -> None:
    """close() returns once our FIN is out, as a Linux socket's does, while the Linux side
    still holds its end open; the stack keeps the connection until the peer's FIN has come
    and ours is acknowledged, then removes it; neither side resets anything."""
    b = topo.host("b")
    before = linux_counters(b)
    got_eof, release = threading.Event(), threading.Event()

    def serve(conn: socket.socket) -> None:
        assert conn.recv(100) == b"bye"
        assert conn.recv(100) == b""
        got_eof.set()
        assert release.wait(10)
    server.start(serve)
    with TcpStack(topo, "a") as stack:
        sock = stack.connect((b.ip, PORT), timeout=None)
        sock.sendall(b"bye")
        sock.close()
        assert not release.is_set()
        assert got_eof.wait(5), "our FIN did not reach the Linux side"
        assert stack.connection(sock) is not None, "removed before the peer closed"
        with pytest.raises(OSError) as info:
            sock.recv(10)
        assert info.value.errno == errno.EBADF
        release.set()
        server.join()
        assert until(lambda: stack.connection(sock) is None), "the close never completed"
    assert not clean(before, linux_counters(b))


def tcp_states(host: Host) -> list[int]:
    """The state of every TCP socket in `host`'s namespace (/proc/net/tcp's `st`)."""
    with host.entered(), open("/proc/thread-self/net/tcp") as f:
        return [int(line.split()[3], 16) for line in f.read().splitlines()[1:]]


def test_a_stack_closed_at_once_acknowledges_the_peer_s_fin_first(
        topo: Topology, server: Linux) -> None:
    """We close first, the Linux side closes when it sees our FIN, and the application
    closes the stack at once (its gen pump held up, as in a busy process): the stack waits
    for the close to complete, its ACK of the peer's FIN included (gen sends it), so the
    Linux socket leaves LAST-ACK on that ACK, with no FIN sent again and no RST."""
    b = topo.host("b")
    last_ack = 9                                 # TCP_LAST_ACK in /proc/net/tcp

    def serve(conn: socket.socket) -> None:
        assert conn.recv(100) == b"bye"
        assert conn.recv(100) == b""             # our FIN: close ours at once
    server.start(serve)
    before = linux_counters(b)
    with TcpStack(topo, "a") as stack:
        run = stack.gen.run

        def slow_round() -> int:
            time.sleep(0.05)
            return run()
        stack.gen.run = slow_round               # type: ignore[method-assign]
        sock = stack.connect((b.ip, PORT), timeout=None)
        sock.sendall(b"bye")
        sock.close()
        server.join()
    assert until(lambda: last_ack not in tcp_states(b)), tcp_states(b)
    moved = clean(before, linux_counters(b))
    assert not moved, moved


def test_a_close_the_peer_never_answers_ends_in_a_reset(topo: Topology,
                                                         server: Linux) -> None:
    """A peer that never sends its FIN: the connection is reset once the socket's timeout
    has passed after close(), and the Linux side sees its connection reset."""
    b = topo.host("b")
    state: list[int] = []

    def serve(conn: socket.socket) -> None:
        assert conn.recv(100) == b"x"
        assert conn.recv(100) == b""                  # our FIN; we never send ours
        tcp_close = 7                                 # TCP_CLOSE, in tcp_info's first byte
        until(lambda: conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == tcp_close)
        state.append(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0])
        state.append(conn.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
    server.start(serve)
    with TcpStack(topo, "a") as stack:
        sock = stack.connect((b.ip, PORT), timeout=0.3)
        sock.sendall(b"x")
        sock.close()
        server.join()
        assert stack.connection(sock) is None
    # closed by a reset: Linux reports EPIPE for one that comes in CLOSE-WAIT (tcp_reset)
    assert state == [7, errno.EPIPE]


def test_a_closed_stack_gives_the_interface_back(topo: Topology, server: Linux) -> None:
    """Its ingress goes with the stack: the host's own TCP has the interface to itself
    again (a Linux client there reaches the server)."""
    a, b = topo.host("a"), topo.host("b")
    with TcpStack(topo, "a"):
        assert a.ifname in attached_program_ids(a.netns)
    assert a.ifname not in attached_program_ids(a.netns)
    server.start(echo)
    client = linux_socket(a)
    with client:
        client.settimeout(5)
        client.connect((b.ip, PORT))
        client.sendall(b"ping")
        assert client.recv(10) == b"ping"
    server.join()


def test_a_small_ring_is_never_overrun(topo: Topology) -> None:
    """Ingress acknowledges data before the kernel puts it on the AF_XDP socket's ring, so
    data that found the ring full would be lost for good. Three Linux clients send 1 MiB
    each at once to a stack whose ring holds 64 frames (three windows need 135): ingress
    refuses what would overrun it, the clients send it again, every byte arrives, and the
    kernel never drops a frame at the ring."""
    a, b = topo.host("a"), topo.host("b")
    data = [os.urandom(1 << 20) for _ in range(3)]
    got: list[bytes] = [b""] * 3
    errors: list[BaseException] = []
    with TcpStack(topo, "a", ring_size=64) as stack, stack.listen(PORT) as listener:
        listener.settimeout(10)
        clients = [linux_socket(b) for _ in data]

        def send(i: int) -> None:
            try:
                clients[i].settimeout(30)
                clients[i].connect((a.ip, PORT))
                clients[i].sendall(data[i])
                clients[i].shutdown(socket.SHUT_WR)
                assert clients[i].recv(10) == b""
            except BaseException as exc:
                errors.append(exc)
        senders = [threading.Thread(target=send, args=(i,)) for i in range(3)]
        for t in senders:
            t.start()
        conns = []
        for _ in data:
            conn, (_ip, port) = listener.accept()
            conn.settimeout(30)
            conns.append((conn, port))
        ports = [c.getsockname()[1] for c in clients]

        def read(conn: TcpSocket, port: int) -> None:
            chunks = bytearray()
            while chunk := conn.recv(1 << 16):
                chunks += chunk
            got[ports.index(port)] = bytes(chunks)
            conn.close()
        readers = [threading.Thread(target=read, args=c) for c in conns]
        for t in readers:
            t.start()
        for t in readers + senders:
            t.join(60)
        for c in clients:
            c.close()
        stats = stack.xsk.statistics()
    assert not errors, errors
    assert got == data
    assert stats.rx_dropped == stats.rx_ring_full == 0, stats


def test_a_closed_port_refuses(topo: Topology) -> None:
    b = topo.host("b")
    with TcpStack(topo, "a") as stack, pytest.raises(ConnectionRefusedError):
        stack.connect((b.ip, PORT + 1), timeout=5)


def test_segments_with_a_bad_checksum_are_dropped_and_the_connection_lives(
        topo: Topology, server: Linux) -> None:
    a, b = topo.host("a"), topo.host("b")
    server.start(echo)
    with TcpStack(topo, "a") as stack, stack.connect((b.ip, PORT), timeout=5) as sock:
        entry = stack.connection(sock)
        assert entry is not None
        peer_port, local_port = PORT, sock.getsockname()[1]
        forged = bytearray(sg.build(src_mac=b.mac_bytes, dst_mac=a.mac_bytes, src=b.ip,
                                    dst=a.ip, sport=peer_port, dport=local_port,
                                    seq=entry["rcv_nxt"], ack=entry["snd_nxt"],
                                    flags=sg.ACK | sg.PSH, payload=b"forged"))
        forged[-1] ^= 0xFF                # the payload no longer matches its checksum
        with b.entered():
            raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        with raw:
            raw.bind((b.ifname, 0))
            raw.send(bytes(forged))
        sock.sendall(b"real")
        assert sock.recv(100) == b"real"
        assert stack.counters()["bad_checksum"] == 1
        assert stack.connection(sock)["bytes_in"] == 4  # type: ignore[index]
    server.join()


def test_segments_of_unknown_connections_get_a_reset(topo: Topology) -> None:
    """A segment for a port etran owns but no connection of it: the control plane answers
    with a RST, as RFC 9293 says, and nothing reaches the host's own stack."""
    a, b = topo.host("a"), topo.host("b")
    with TcpStack(topo, "a") as stack, stack.listen(PORT):
        with ipv4_socket(b, 2) as raw:
            raw.send(sg.build(src_mac=b.mac_bytes, dst_mac=a.mac_bytes, src=b.ip, dst=a.ip,
                              sport=40000, dport=PORT, seq=1000, ack=77, flags=sg.ACK,
                              payload=b"stray"))
            while True:
                seg = sg.parse(raw.recv(2048))
                if seg is not None and seg.src == a.ip:
                    break
        assert seg.has(sg.RST) and seg.seq == 77 and seg.dport == 40000
        assert struct.unpack("!H", struct.pack("!H", seg.sport))[0] == PORT


def impair(topo: Topology, host: str, **config: int) -> dict[str, Any]:
    """Put the TCP link program on the switch port facing `host` (its outgoing data); returns
    its typed maps (the topology owns the object). Retransmissions pass (`fresh_only`), so
    each drop is a loss fast retransmit can repair, and a timeout would be a failure."""
    compiled = compile_file(LINK)
    loaded = topo.own(load_object(compiled.elf, f"link_{host}"), None)
    maps = typed_maps(loaded, compiled.program)
    maps["config"][0] = {"drop_every": 0, "burst": 0, "mark_every": 0, "fresh_only": 1,
                         **config}
    topo.set_link_program(host, loaded.programs["tcp_link"])
    return maps


@dataclass
class Transfer:
    sent: bytes
    received: bytes
    first: dict[str, Any]          # the connection's entry right after the handshake
    last: dict[str, Any]           # ... and when all was acknowledged
    trace: list[dict[str, int]]    # the data path's congestion-control records


def transfer_to_linux(topo: Topology, server: Linux, size: int) -> Transfer:
    """`size` random bytes from etran on a to the Linux server on b."""
    b = topo.host("b")
    data = os.urandom(size)
    got: list[bytes] = []
    server.start(drain(got))
    with TcpStack(topo, "a") as stack, stack.connect((b.ip, PORT), timeout=30) as sock:
        first = stack.connection(sock)
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        server.join()
        assert sock.recv(10) == b""
        last = stack.connection(sock)
        trace = stack.trace()
    assert first is not None and last is not None
    return Transfer(data, b"".join(got), first, last, trace)


def transfer_from_linux(topo: Topology, size: int, reply: bytes = b"",
                        during: Callable[[socket.socket, TcpSocket, TcpStack], None] | None = None,
                        **stack_args: Any) -> tuple[bytes, bytes]:
    """`size` random bytes from a Linux client on b to an etran server on a, which sends
    `reply` back once the client's FIN came (the client checks it, then the server's FIN).
    `during(client, conn, stack)` runs after each chunk the server receives; `stack_args`
    go to the server's TcpStack."""
    a, b = topo.host("a"), topo.host("b")
    data = os.urandom(size)
    with TcpStack(topo, "a", **stack_args) as stack, stack.listen(PORT) as listener:
        listener.settimeout(5)
        client = linux_socket(b)
        client.settimeout(30)
        errors: list[BaseException] = []

        def send() -> None:
            try:
                client.connect((a.ip, PORT))
                client.sendall(data)
                client.shutdown(socket.SHUT_WR)
                if reply:
                    assert client.recv(100) == reply
                assert client.recv(10) == b""
            except BaseException as exc:
                errors.append(exc)
        sender = threading.Thread(target=send)
        sender.start()
        with client:
            conn, peer = listener.accept()
            assert peer[0] == b.ip
            conn.settimeout(30)
            got = bytearray()
            while chunk := conn.recv(1 << 16):
                got += chunk
                if during is not None:
                    during(client, conn, stack)
            if reply:
                conn.sendall(reply)
            conn.close()
            sender.join(30)
        assert not errors, errors
    return data, bytes(got)


@pytest.mark.parametrize("loss", [{"drop_every": 100}, {"drop_every": 400, "burst": 5}],
                         ids=["1-percent", "bursts-of-5"])
def test_etran_to_linux_over_a_lossy_link(topo: Topology, server: Linux,
                                          loss: dict[str, int]) -> None:
    """Drops on the link from a: etran's fast retransmit (three duplicate ACKs from Linux)
    repairs them; Linux sees no bad checksum and sends no RST."""
    b = topo.host("b")
    link = impair(topo, "a", **loss)
    before = linux_counters(b)
    t = transfer_to_linux(topo, server, BULK)
    assert hashlib.sha256(t.received).digest() == hashlib.sha256(t.sent).digest()
    assert link["state"][0]["dropped"] >= BULK // 1460 // loss["drop_every"]
    entry = t.last
    # Every fast retransmit and timeout asks for a go-back; one that comes while a go-back is
    # still queued joins it (`go_back_queued`), so the go-backs done are at most the asks.
    assert entry["fast_retransmits"] >= 1
    assert 1 <= entry["go_backs"] <= entry["fast_retransmits"] + entry["timeouts"], entry
    moved = clean(before, linux_counters(b))
    assert "TcpInCsumErrors" not in moved and "TcpOutRsts" not in moved, moved


def test_data_whose_timer_never_started_is_sent_again(topo: Topology, server: Linux) -> None:
    """The kernel can fail to start a retransmission timer. Data whose every segment is
    then lost, with no timer (the entry rewritten from user space, which frees it) and no
    ACK to come, is found by the library's look (`_watch_timers`), which has gen start the
    timer: it fires, egress goes back, and the retransmission reaches the Linux peer."""
    b = topo.host("b")
    server.start(echo)
    with TcpStack(topo, "a") as stack, stack.connect((b.ip, PORT), timeout=5) as sock:
        sock.sendall(b"ping")
        assert sock.recv(10) == b"ping"
        impair(topo, "a", drop_every=1)            # every new segment lost; resends pass
        conns = stack.maps["conns"]
        key = stack._map_key(sock.key)
        sock.sendall(b"lost at first")
        entry = conns[key]
        assert entry["rto_armed"] == 1 and entry["snd_una"] != entry["snd_nxt"]
        conns[key] = {**entry, "rto_armed": 0}     # a new element: no timer
        time.sleep(0.3)                            # more than a timeout: nothing came back
        if stack.timers_asked == 0:
            assert conns[key]["timeouts"] == 0
        sock.settimeout(5)
        assert sock.recv(64) == b"lost at first"
        assert stack.timers_asked >= 1
        after = conns[key]
        assert after["timeouts"] >= 1 and after["snd_una"] == after["snd_nxt"]


@pytest.mark.parametrize("loss", [{"drop_every": 100}, {"drop_every": 400, "burst": 5}],
                         ids=["1-percent", "bursts-of-5"])
def test_linux_to_etran_over_a_lossy_link(topo: Topology, loss: dict[str, int]) -> None:
    """Drops on the link from b: etran's immediate duplicate ACKs let Linux fast-retransmit
    instead of waiting for its retransmission timeout."""
    b = topo.host("b")
    link = impair(topo, "b", **loss)
    before = linux_counters(b)
    data, got = transfer_from_linux(topo, BULK)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert link["state"][0]["dropped"] >= BULK // 1460 // loss["drop_every"]
    after = linux_counters(b)
    moved = clean(before, after)
    retransmitted = after["TcpRetransSegs"] - before["TcpRetransSegs"]
    assert retransmitted >= link["state"][0]["dropped"]
    # Fast retransmit repairs the losses; a single timeout is seen about once in eight
    # runs (not traced yet, docs/tcp.md), never more.
    assert moved.get("TcpExtTCPTimeouts", 0) <= 1, moved
    moved.pop("TcpExtTCPTimeouts", None)
    assert not moved, moved
    assert "TcpInCsumErrors" not in moved and "TcpOutRsts" not in moved, moved


def dctcp_reference(first: dict[str, Any], trace: list[dict[str, int]]) -> list[tuple[int, ...]]:
    """Linux's tcp_dctcp.c rule (alpha in 1/1024 from 1024, g = 1/16, updated once per window
    of data from the delivered and CE-echoed segment counts; on ECE, once per window of data,
    cwnd = max(cwnd - cwnd * alpha >> 11, 2)), with slow start and congestion avoidance
    around it, replayed over the ACKs the data path saw: (alpha, cwnd, ssthresh) after each."""
    alpha, cwnd, ssthresh, count = 1024, first["cwnd"], first["ssthresh"], 0
    delivered = delivered_ce = old = old_ce = 0
    next_seq = cwr_end = first["snd_nxt"]

    def before(a: int, b: int) -> bool:
        return (a - b) & 0xFFFFFFFF >= 1 << 31
    out = []
    for r in trace:
        delivered += r["acked"]
        delivered_ce += r["acked"] if r["ece"] else 0
        if not before(r["snd_una"], next_seq):
            d, d_ce = delivered - old, delivered_ce - old_ce
            alpha -= alpha >> 4 if alpha >> 4 else alpha          # min_not_zero
            if d_ce:
                alpha = min(alpha + (d_ce << 6) // max(1, d), 1024)
            next_seq, old, old_ce = r["snd_nxt"], delivered, delivered_ce
        if r["ece"] and not before(r["snd_una"], cwr_end):
            ssthresh = max(cwnd - ((cwnd * alpha) >> 11), 2)
            cwnd, count, cwr_end = ssthresh, 0, r["snd_nxt"]
        elif cwnd < ssthresh:
            cwnd = min(cwnd + r["acked"], ssthresh)
        else:
            count += r["acked"]
            if count >= cwnd:
                count, cwnd = count - cwnd, cwnd + 1
        cwnd = min(cwnd, 65535)
        out.append((alpha, cwnd, ssthresh))
    return out


def test_dctcp_follows_linux_rule_under_ce_marks(topo: Topology, server: Linux) -> None:
    """ECN negotiated with Linux; the link marks every 10th data segment CE; Linux echoes
    ECE; after every ACK the data path's (alpha, cwnd, ssthresh) equal the reference."""
    b = topo.host("b")
    link = impair(topo, "a", mark_every=10)
    before = linux_counters(b)
    t = transfer_to_linux(topo, server, 4 << 20)
    assert t.received == t.sent
    assert t.first["ecn_ok"]
    after = linux_counters(b)
    assert after["IpExtInCEPkts"] - before["IpExtInCEPkts"] == link["state"][0]["marked"] > 0
    assert after["IpExtInECT0Pkts"] > before["IpExtInECT0Pkts"]
    assert len(t.trace) > 100
    got = [(r["alpha"], r["cwnd"], r["ssthresh"]) for r in t.trace]
    want = dctcp_reference(t.first, t.trace)
    assert got == want
    alphas = {a for a, _, _ in got}
    assert min(alphas) < 1024 and len(alphas) > 5        # alpha moved, window by window
    assert sum(1 for r in t.trace if r["ece"]) > 0
    assert any(later[1] < earlier[1] for earlier, later in itertools.pairwise(got))  # cwnd cut
    assert clean(before, after) == {}
    # RFC 6298's smoothed RTT from timed segments: set, plausible, and in every record
    assert 0 < t.last["srtt_us"] < 100_000 and t.last["rttvar_us"] < 100_000
    assert all(r["srtt_us"] > 0 for r in t.trace[5:])


def test_blind_resets_and_syns_leave_the_connection_alone(topo: Topology,
                                                          server: Linux) -> None:
    """RFC 5961: a RST out of the window is ignored, one in the window but not at rcv_nxt
    and a SYN each earn a challenge ACK, and the connection goes on; a RST exactly at
    rcv_nxt resets it."""
    a, b = topo.host("a"), topo.host("b")
    server.start(echo)
    with TcpStack(topo, "a") as stack, stack.connect((b.ip, PORT), timeout=5) as sock:
        sock.sendall(b"before")
        assert sock.recv(100) == b"before"
        entry = stack.connection(sock)
        assert entry is not None
        local = sock.getsockname()[1]
        with ipv4_socket(b, 1) as raw:

            def forge(seq: int, flags: int) -> None:
                raw.send(sg.build(src_mac=b.mac_bytes, dst_mac=a.mac_bytes, src=b.ip,
                                  dst=a.ip, sport=PORT, dport=local, seq=seq,
                                  ack=entry["snd_nxt"], flags=flags))

            def challenge_acks(wait: float = 0.3) -> int:
                return sum(seg.flags == sg.ACK and seg.ack == entry["rcv_nxt"] and
                           not seg.payload for seg in segments_from(raw, a.ip, wait))
            # the ACKs of the exchange above (the data's, the window's once read) leave
            # when the gen pump runs: let them pass before the forged segments
            segments_from(raw, a.ip, 0.2)
            forge((entry["rcv_nxt"] + 1_000_000) & 0xFFFFFFFF, sg.RST)    # out of window
            assert challenge_acks() == 0
            forge((entry["rcv_nxt"] + 1000) & 0xFFFFFFFF, sg.RST)         # in the window
            assert challenge_acks() == 1
            forge((entry["rcv_nxt"] + 5) & 0xFFFFFFFF, sg.SYN)            # a SYN
            assert challenge_acks() == 1
            sock.sendall(b"after")
            assert sock.recv(100) == b"after"
            assert stack.connection(sock) is not None
            entry = stack.connection(sock)
            forge(entry["rcv_nxt"], sg.RST)                               # exactly right
            with pytest.raises(ConnectionResetError):
                sock.recv(100)
            assert stack.connection(sock) is None
        # Linux's end still thinks the connection is open: reset it as we would have.
        with a.entered():
            raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        with raw:
            raw.bind((a.ifname, 0))
            raw.send(sg.build(src_mac=a.mac_bytes, dst_mac=b.mac_bytes, src=a.ip, dst=b.ip,
                              sport=local, dport=PORT, seq=entry["snd_nxt"], flags=sg.RST))
        with pytest.raises(ConnectionResetError):
            server.join()


def test_malformed_segments_leave_the_connection_intact(topo: Topology,
                                                        server: Linux) -> None:
    """Forged from b's address to a live connection, with valid checksums: a data offset
    below 5, one past the segment, and a SYN flood at ports etran does not own (the host's
    own stack answers those). Each bad one is counted and dropped; the connection goes on.
    (Options are read only for the timestamps, where RFC 7323's appendix puts them; the
    data offset skips the rest, whatever it holds; the hooks' fuzzing draws every offset
    and option byte.)"""
    a, b = topo.host("a"), topo.host("b")
    server.start(echo)
    with TcpStack(topo, "a") as stack, stack.connect((b.ip, PORT), timeout=5) as sock:
        sock.sendall(b"first")
        assert sock.recv(100) == b"first"
        entry = stack.connection(sock)
        assert entry is not None
        local = sock.getsockname()[1]
        with b.entered():
            raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        with raw:
            raw.bind((b.ifname, 0))

            def forged(doff: int, options: bytes = b"", payload: bytes = b"junk",
                       seq: int | None = None, dport: int = local, flags: int = sg.ACK,
                       sport: int = PORT) -> bytes:
                f = bytearray(sg.build(src_mac=b.mac_bytes, dst_mac=a.mac_bytes, src=b.ip,
                                       dst=a.ip, sport=sport, dport=dport,
                                       seq=entry["rcv_nxt"] if seq is None else seq,
                                       ack=entry["snd_nxt"], flags=flags, options=options,
                                       payload=payload))
                f[46] = doff << 4                  # a data offset the options do not match
                return bytes(f[:50]) + b"\0\0" + bytes(f[52:])   # checksum recomputed below

            def resum(f: bytes) -> bytes:
                seg = bytearray(f)
                tcp_len = len(seg) - 34
                pseudo = sum(int.from_bytes(seg[26 + i:28 + i], "big") for i in range(0, 8, 2))
                seg[50:52] = sg.checksum(bytes(seg[34:]), pseudo + 6 + tcp_len).to_bytes(2, "big")
                return bytes(seg)
            before = stack.counters()
            raw.send(resum(forged(4)))                        # data offset below 5
            raw.send(resum(forged(15)))                       # past the segment's end
            for port in range(6000, 6300):                    # SYN flood at a port not ours
                raw.send(resum(forged(5, flags=sg.SYN, dport=port, sport=40000, seq=port,
                                      payload=b"")))
            sock.sendall(b"second")
            assert sock.recv(100) == b"second"
            after = stack.counters()
            assert after["bad_header"] - before["bad_header"] == 2
            assert after["bad_checksum"] == before["bad_checksum"] == 0
        assert len(list(stack.maps["conns"].keys())) == 1
    server.join()



def linux_tcp_info(sock: socket.socket) -> tuple[int, int, int]:
    """Of a Linux TCP socket (struct tcp_info, linux/tcp.h): the window-scale shift it
    applies to the peer's windows, the one it applies to its own, and its send window in
    bytes (the peer's advertised window, scaled)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    assert len(info) == 232, "this kernel's tcp_info has no tcpi_snd_wnd"
    return info[6] & 0x0F, info[6] >> 4, struct.unpack_from("I", info, 228)[0]


def linux_uses_sack(sock: socket.socket) -> bool:
    """tcpi_options & TCPI_OPT_SACK: the connection negotiated SACK (RFC 2018)."""
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[5] & 2)


def linux_uses_timestamps(sock: socket.socket) -> bool:
    """tcpi_options & TCPI_OPT_TIMESTAMPS: the connection negotiated RFC 7323 timestamps."""
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[5] & 1)


@pytest.mark.parametrize("scaling", [True, False], ids=["linux-scales", "linux-does-not"])
def test_window_scaling_with_a_linux_client(topo: Topology, scaling: bool) -> None:
    """RFC 7323 against Linux: an etran server with a 256 KiB receive buffer offers the
    window-scale shift that buffer needs (3) when the Linux client's SYN offers one, and
    Linux then sees more than 64 KiB as its send window; a client with scaling off gets
    neither, and the server holds at most 65,535 bytes (what an unscaled window says)."""
    b = topo.host("b")
    netns.write_sysctl(b.netns, "net.ipv4.tcp_window_scaling", "1" if scaling else "0")
    seen: list[tuple[int, int, int]] = []
    entries: list[dict[str, Any]] = []

    def sample(client: socket.socket, conn: TcpSocket, stack: TcpStack) -> None:
        if len(seen) < 50:                  # what Linux sees as its send window meanwhile
            seen.append(linux_tcp_info(client))
            entries.append(stack.connection(conn) or {})
    data, got = transfer_from_linux(topo, 4 << 20, during=sample, receive_buffer=256 << 10)
    assert got == data
    entry = entries[0]
    windows = [w for _, _, w in seen]
    if scaling:
        assert (entry["rcv_wscale"], entry["rcv_buf"]) == (3, 256 << 10)
        assert entry["snd_wscale"] == seen[0][1] > 0      # Linux's own shift, taken
        assert seen[0][0] == 3                             # Linux scales our windows by 3
        assert max(windows) > 65535, windows               # and sees more than 64 KiB
    else:
        assert (entry["snd_wscale"], entry["rcv_wscale"], entry["rcv_buf"]) == (0, 0, 65535)
        assert seen[0][:2] == (0, 0) and max(windows) <= 65535, seen


def test_a_linux_server_scales_its_window_for_an_etran_client(topo: Topology,
                                                               server: Linux) -> None:
    """etran's SYN offers window scaling (shift 0: its 64 KiB buffer needs none), Linux's
    SYN-ACK answers with its shift, and etran reads Linux's windows scaled: after 8 MiB the
    peer's window in the data path is past what 16 bits say."""
    b = topo.host("b")
    data = os.urandom(BULK)
    got: list[bytes] = []
    seen: list[tuple[int, int, int]] = []

    def serve(conn: socket.socket) -> None:
        seen.append(linux_tcp_info(conn))
        drain(got)(conn)
    server.start(serve)
    with TcpStack(topo, "a") as stack:
        with stack.connect((b.ip, PORT), timeout=20) as sock:
            sock.sendall(data)
            entry = stack.connection(sock)
        server.join()
    assert b"".join(got) == data
    assert entry is not None and entry["rcv_wscale"] == 0
    assert seen[0][0] == 0                                 # Linux: etran's shift is 0
    assert entry["snd_wscale"] == seen[0][1] > 0           # Linux's, taken
    assert entry["snd_wnd"] > 65535, entry["snd_wnd"]


@pytest.mark.parametrize(("ours", "linux"), [(True, True), (False, True), (True, False)],
                         ids=["both", "etran-declines", "linux-declines"])
def test_timestamps_with_linux_both_ways(topo: Topology, ours: bool, linux: bool) -> None:
    """RFC 7323 timestamps, on when both SYNs offer them: Linux then sends them in every
    segment and checks ours (PAWS), and etran echoes Linux's latest in every segment it
    sends. 1 MiB each way with a Linux echo server, then 1 MiB from a Linux client: the
    bytes equal, Linux's counters clean (no segment refused by PAWS), and each side agreeing
    whether timestamps are on."""
    b = topo.host("b")
    netns.write_sysctl(b.netns, "net.ipv4.tcp_timestamps", "1" if linux else "0")
    agreed = ours and linux
    before = linux_counters(b)
    data = os.urandom(1 << 20)
    seen: list[bool] = []

    def serve(conn: socket.socket) -> None:
        seen.append(linux_uses_timestamps(conn))
        echo(conn)
    with TcpStack(topo, "a", timestamps=ours) as stack:
        sock_b = linux_socket(b)
        sock_b.bind((b.ip, PORT))
        sock_b.listen()
        sock_b.settimeout(20)
        server = Linux(b, sock_b)
        with sock_b:
            server.start(serve)
            received = bytearray()
            with stack.connect((b.ip, PORT), timeout=20) as sock:
                entry = stack.connection(sock)

                def read() -> None:
                    while len(received) < len(data) and (chunk := sock.recv(1 << 16)):
                        received.extend(chunk)
                reader = threading.Thread(target=read)
                reader.start()
                sock.sendall(data)
                reader.join(30)
                late = stack.connection(sock)
            server.join()
    assert bytes(received) == data
    assert seen == [agreed]
    assert entry is not None and late is not None and entry["ts_ok"] == agreed
    if agreed:      # Linux's clock moved on, and we echo its latest
        assert late["ts_recent"] != 0 and late["ts_recent"] != entry["ts_recent"]
        assert entry["mss"] == sg.MSS - sg.TS_LEN
    sent, got = transfer_from_linux(topo, 1 << 20, timestamps=ours)
    assert got == sent
    after = linux_counters(b)
    assert clean(before, after) == {}
    assert after.get("TcpExtPAWSEstab", 0) == before.get("TcpExtPAWSEstab", 0)


def test_a_segment_with_an_old_timestamp_is_refused(topo: Topology, server: Linux) -> None:
    """PAWS (RFC 7323 5.3): with timestamps on, a segment at rcv_nxt whose timestamp is
    older than the latest one taken is an old duplicate: counted, answered with a duplicate
    ACK, its data not taken; the connection goes on."""
    a, b = topo.host("a"), topo.host("b")
    server.start(echo)
    with TcpStack(topo, "a") as stack, stack.connect((b.ip, PORT), timeout=5) as sock:
        sock.sendall(b"before")
        assert sock.recv(100) == b"before"
        entry = stack.connection(sock)
        assert entry is not None and entry["ts_ok"] and entry["ts_recent"]
        local = sock.getsockname()[1]
        with ipv4_socket(b, 1) as raw:
            raw.send(sg.build(src_mac=b.mac_bytes, dst_mac=a.mac_bytes, src=b.ip, dst=a.ip,
                              sport=PORT, dport=local, seq=entry["rcv_nxt"],
                              ack=entry["snd_nxt"], flags=sg.ACK | sg.PSH,
                              options=sg.ts_option(entry["ts_recent"] - 1000, 0),
                              payload=b"forged"))
            acks = [seg for seg in segments_from(raw, a.ip, 0.5) if seg.flags == sg.ACK]
        after = stack.connection(sock)
        assert after is not None and after["paws_rejected"] == 1
        assert after["rcv_nxt"] == entry["rcv_nxt"]                # the data was not taken
        assert any(s.ack == entry["rcv_nxt"] and s.ts is not None for s in acks), acks
        sock.sendall(b"after")
        assert sock.recv(100) == b"after"


def test_several_holes_at_once_are_each_repaired_once(topo: Topology) -> None:
    """Every 30th new segment from a Linux client dropped, SACK off (with it, Linux's
    recovery closes holes too fast for two to be open at once: the next test): several
    holes are open in one window at a time. etran holds up to four out-of-order intervals,
    so Linux resends the lost segments and (nearly) nothing else: what it retransmits stays
    within twice what the link dropped. Holding one interval, as etran did before, the
    followers of a second hole were dropped and resent too: 97 dropped, 633 to 987 resent
    and 10 to 12 timeouts in 3 runs.

    Some timeouts remain, and they are Linux's NewReno: they are counted as
    TcpExtTCPRenoRecoveryFail (a timeout while in recovery). After a partial ACK the next
    hole is resent only once three fresh duplicate ACKs arrive, which only new data past
    the held intervals can bring, and how much the window lets through then depends on how
    soon the application reads. In 77 runs on a quiet machine: 0 timeouts in 52, 1 in 17,
    2 in 3, 3 in 4, 4 in 1; retransmitted 97 to 156 for 97 dropped. (At every 20th, Linux
    itself times out more often, whatever etran holds: too flaky a bound for CI.)"""
    b = topo.host("b")
    link = impair(topo, "b", drop_every=30)
    before = linux_counters(b)
    seen: list[int] = []
    sampler: list[threading.Thread] = []
    done = threading.Event()

    def held(client: socket.socket, conn: TcpSocket, stack: TcpStack) -> None:
        # the intervals held, sampled every half millisecond for the whole transfer (a
        # sample per chunk read missed the moments two were open, once in a busy suite)
        def sample() -> None:
            with contextlib.suppress(Exception):    # (the stack closes under the last one)
                while not done.is_set():
                    entry = stack.connection(conn)
                    if entry is not None:
                        seen.append(entry["ooo_count"])
                    time.sleep(0.0005)
        if not sampler:
            sampler.append(threading.Thread(target=sample, daemon=True))
            sampler[0].start()
    try:
        data, got = transfer_from_linux(topo, 4 << 20, during=held, sack=False)
    finally:
        done.set()
        for thread in sampler:
            thread.join(5)
    assert got == data
    dropped = link["state"][0]["dropped"]
    after = linux_counters(b)
    retransmitted = after["TcpRetransSegs"] - before["TcpRetransSegs"]
    assert dropped >= (4 << 20) // 1448 // 30 - 1
    assert dropped <= retransmitted <= 2 * dropped, (dropped, retransmitted)
    # NewReno's recovery failing now and then (above); holding one interval made 10 to 12
    assert after.get("TcpExtTCPTimeouts", 0) - before.get("TcpExtTCPTimeouts", 0) <= 5
    assert max(seen) >= 2, seen            # two holes were open at once, both held


@pytest.mark.parametrize("sack", [True, False], ids=["sack", "no-sack"])
def test_sack_lets_a_linux_sender_resend_only_what_was_dropped(topo: Topology,
                                                                sack: bool) -> None:
    """Every 20th new segment from a Linux client dropped (4 MiB). With SACK agreed, our
    ACKs carry the intervals held and Linux recovers by its SACK scoreboard: it resends
    what was dropped and nothing else (measured: 146 of 146, and 98 for 97 at every 30th),
    with no retransmission timeout. Without it, Linux falls back to NewReno, which resends
    more and times out now and then (165 for 146 and one timeout in the run measured)."""
    b = topo.host("b")
    link = impair(topo, "b", drop_every=20)
    before = linux_counters(b)
    agreed: list[tuple[bool, bool]] = []

    def note(client: socket.socket, conn: TcpSocket, stack: TcpStack) -> None:
        entry = stack.connection(conn)
        if entry is not None and not agreed:
            agreed.append((entry["sack_ok"], linux_uses_sack(client)))
    data, got = transfer_from_linux(topo, 4 << 20, during=note, sack=sack)
    assert got == data
    assert agreed == [(sack, sack)]                  # both ends agree whether it is on
    after = linux_counters(b)
    moved = {k: after.get(k, 0) - before.get(k, 0) for k in
             ("TcpRetransSegs", "TcpExtTCPSackRecovery", "TcpExtTCPRenoRecovery",
              "TcpExtTCPTimeouts")}
    dropped = link["state"][0]["dropped"]
    assert dropped >= (4 << 20) // 1448 // 20 - 1
    if sack:
        assert moved["TcpExtTCPSackRecovery"] > 0 and moved["TcpExtTCPRenoRecovery"] == 0
        assert dropped <= moved["TcpRetransSegs"] <= dropped + dropped // 20, (dropped, moved)
        assert moved["TcpExtTCPTimeouts"] <= 1, moved
    else:
        assert moved["TcpExtTCPSackRecovery"] == 0 and moved["TcpExtTCPRenoRecovery"] > 0


@pytest.mark.parametrize("ours", [True, False], ids=["etran-offers", "etran-does-not"])
def test_sack_is_agreed_with_a_linux_server_only_when_both_offer(topo: Topology, server: Linux,
                                                                  ours: bool) -> None:
    """Our SYN offers SACK-permitted (RFC 2018) unless the stack was made without it;
    Linux's accepted socket says whether it was agreed, and so does our entry."""
    seen: list[bool] = []

    def serve(conn: socket.socket) -> None:
        seen.append(linux_uses_sack(conn))
        echo(conn)
    server.start(serve)
    with TcpStack(topo, "a", sack=ours) as stack:
        with stack.connect((server.host.ip, PORT), timeout=20) as sock:
            entry = stack.connection(sock)
            sock.sendall(b"sack?")
            assert sock.recv(16) == b"sack?"
        server.join()
    assert seen == [ours]
    assert entry is not None and entry["sack_ok"] == ours

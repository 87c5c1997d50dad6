"""AF_XDP sockets in copy mode: frames redirected by a DSL program arrive in the RX ring,
frames put in the TX ring arrive at a plain socket on the other host, flow control holds when
the rings are smaller than the burst, and bind failures are clear."""

from __future__ import annotations

import time

import pytest

from etran.runtime.afxdp import XskSocket
from etran.runtime.errors import EtranRuntimeError
from etran.runtime.loader import load_object
from etran.runtime.topology import Topology
from etran.testing.packets import checksum

from .conftest import compiled, frame, u64s

pytestmark = pytest.mark.netns


def test_receives_frames_the_transport_redirects(kernel: None) -> None:
    with Topology("two-hosts") as topo, load_object(compiled("xsk_echo.py").elf) as obj:
        a, b = topo.host("a"), topo.host("b")
        topo.attach("b", obj.programs["rx"])
        with XskSocket(b.interface) as xsk, a.udp_socket() as client, \
                b.udp_socket(9001) as other:
            xsk.register(obj.maps["xsks"])
            for i in range(10):
                client.sendto(b"to-app-%d" % i, (b.ip, 9005))
            client.sendto(b"to-stack", (b.ip, 9001))
            got: list[bytes] = []
            deadline = time.monotonic() + 2
            while len(got) < 10 and time.monotonic() < deadline:
                got += xsk.recv(64, timeout=0.2)
            assert [f[42:] for f in got] == [b"to-app-%d" % i for i in range(10)]
            assert all(f[0:6] == b.mac_bytes and f[6:12] == a.mac_bytes for f in got)
            assert checksum(got[0][14:34]) == 0  # the IPv4 header checksum is complete
            assert other.recvfrom(100)[0] == b"to-stack"  # XDP_PASS still reaches the stack
            assert u64s(obj.maps["counters"].lookup(bytes(4))) == (11, 11, 10)
            assert xsk.statistics().rx_dropped == 0


def test_sends_frames_that_arrive_at_a_plain_socket(kernel: None) -> None:
    count = 3000
    with Topology("two-hosts") as topo:
        a, b = topo.host("a"), topo.host("b")
        # rings of 64 and 128 chunks: a 3000-frame burst needs completions to be reaped
        with XskSocket(b.interface, frame_count=128, ring_size=64) as xsk, \
                a.udp_socket(7000, buffer_bytes=32 << 20) as server:
            frames = [frame(b, a, 9005, 7000, b"%05d" % i) for i in range(count)]
            assert xsk.send(frames, timeout=5) == count
            assert xsk.flush()
            got = [server.recvfrom(100)[0] for _ in range(count)]
            assert got == [b"%05d" % i for i in range(count)]


def test_frames_given_as_head_and_body_arrive_whole(kernel: None) -> None:
    """`send_parts` writes each (head, body) pair into one chunk: the frames arrive as if
    joined, in order, whatever the split (a body of any length, none, a memoryview of a
    larger buffer), through rings smaller than the burst; an oversized pair is refused."""
    count = 1000
    with Topology("two-hosts") as topo:
        a, b = topo.host("a"), topo.host("b")
        with XskSocket(b.interface, frame_count=128, ring_size=64) as xsk, \
                a.udp_socket(7000, buffer_bytes=32 << 20) as server:
            payloads = [b"%05d" % i + bytes([i % 251]) * (i % 1400) for i in range(count)]
            frames = [frame(b, a, 9005, 7000, p) for p in payloads]
            store = memoryview(b"".join(frames))
            parts = []
            at = 0
            for i, f in enumerate(frames):
                split = (i * 37) % (len(f) + 1)      # from all-body to all-head
                parts.append((f[:split], store[at + split:at + len(f)]))
                at += len(f)
            assert xsk.send_parts(parts, timeout=5) == count
            assert xsk.flush()
            assert [server.recvfrom(2048)[0] for _ in range(count)] == payloads
            with pytest.raises(EtranRuntimeError, match="the limit is 2048"):
                xsk.send_parts([(bytes(1000), bytes(1049))])


def test_polling_and_blocking_receive(kernel: None) -> None:
    with Topology("two-hosts", switch_xdp=False) as topo:
        b = topo.host("b")
        with XskSocket(b.interface, blocking=False) as polling:
            started = time.monotonic()
            assert polling.recv() == []
            assert time.monotonic() - started < 0.05
        with XskSocket(b.interface, blocking=True) as blocking:
            started = time.monotonic()
            assert blocking.recv(timeout=0.2) == []
            assert 0.15 < time.monotonic() - started < 1.0


def test_nonblocking_send_stops_when_the_rings_are_full(kernel: None) -> None:
    with Topology("two-hosts") as topo:
        a, b = topo.host("a"), topo.host("b")
        with XskSocket(b.interface, frame_count=128, ring_size=64, blocking=False) as xsk:
            frames = [frame(b, a, 9005, 7000, b"x")] * 10_000
            sent = xsk.send(frames)
            assert 64 <= sent <= 10_000  # never more than fits, never blocks
            assert xsk.flush()


def test_bind_to_a_missing_queue_is_a_clear_error(kernel: None) -> None:
    with Topology("two-hosts", switch_xdp=False) as topo:
        b = topo.host("b")
        with pytest.raises(EtranRuntimeError) as err:
            XskSocket(b.interface, queue=7)
        message = str(err.value)
        assert message.startswith(f"bind an AF_XDP socket to etran-eth0 in {b.netns} queue 7: "
                                  "queue 7 does not exist (the interface has ")


def test_second_socket_on_a_queue_is_refused_and_close_frees_the_queue(kernel: None) -> None:
    with Topology("two-hosts", switch_xdp=False) as topo:
        b = topo.host("b")
        with XskSocket(b.interface, queue=0), \
                pytest.raises(EtranRuntimeError, match="another AF_XDP socket is bound"):
            XskSocket(b.interface, queue=0)
        with XskSocket(b.interface, queue=0) as again:  # closing unmapped and unbound it
            assert not again.closed

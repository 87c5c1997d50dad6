"""The hooks the runtime runs: @egress on every frame the application sends, honouring each
verdict; @gen after each batch or when asked; frames leave through the host's interface."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from etran.runtime.afxdp import XskSocket
from etran.runtime.errors import EtranRuntimeError
from etran.runtime.hooks import Egress, Endpoint, Gen, GenPump
from etran.runtime.loader import LoadedObject, load_object
from etran.runtime.topology import Host, Topology
from etran.runtime.transmit import HostPort

from .conftest import compiled, frame

pytestmark = pytest.mark.netns

STATE = struct.Struct("<4I3Q")  # State in seq_transport.py


def test_a_port_transmits_every_frame(kernel: None) -> None:
    count = 1000
    with Topology("two-hosts") as topo:
        a, b = topo.host("a"), topo.host("b")
        with a.udp_socket(7000, buffer_bytes=16 << 20) as server, HostPort(b.interface) as port:
            for i in range(count):
                port.transmit(frame(b, a, 9005, 7000, b"port%04d" % i))
            got = [server.recvfrom(100)[0] for _ in range(count)]
        assert got == [b"port%04d" % i for i in range(count)]


def test_egress_honours_every_verdict(kernel: None) -> None:
    """XDP_TX leaves the host, XDP_DROP does not, XDP_REDIRECT to the application's socket comes
    back to the application (and wakes a waiting recv), XDP_PASS is refused by name."""
    with Topology("two-hosts") as topo:
        a, b = topo.host("a"), topo.host("b")
        obj = topo.own(load_object(compiled("verdicts.py").elf, "verdicts"), "a")
        with b.udp_socket(7000, timeout=1.0) as server, XskSocket(a.interface) as xsk, \
                Egress(obj.programs["choose"], a.interface) as egress:
            xsk.register(obj.maps["xsks"])
            app = Endpoint(xsk, egress=egress)
            sent = [frame(a, b, 9005, 7000, bytes([v]) + b"verdict") for v in (0, 1, 2, 0)]
            assert app.send(sent) == 4
            assert (egress.sent, egress.dropped, egress.returned) == (2, 1, 1)
            assert [server.recvfrom(100)[0] for _ in range(2)] == [b"\0verdict"] * 2
            server.settimeout(0.2)
            with pytest.raises(socket.timeout):  # the dropped and the returned never left
                server.recvfrom(100)
            assert app.recv(64, timeout=0) == [sent[2]]
            assert app.recv(64, timeout=0) == []
            # a frame returned while the application waits wakes it at once
            late = frame(a, b, 9005, 7000, b"\2late")
            start = time.monotonic()
            timer = threading.Timer(0.05, egress.send, ([late],))
            timer.start()
            assert app.recv(64, timeout=5.0) == [late]
            timer.join()
            assert time.monotonic() - start < 2.0
            with pytest.raises(EtranRuntimeError, match="XDP_PASS"):
                egress.send([frame(a, b, 9005, 7000, b"\3pass")])


@dataclass
class SeqHosts:
    topo: Topology
    a: Host
    b: Host
    objects: dict[str, LoadedObject]

    def state(self, host: str) -> tuple[int, ...]:
        raw = self.objects[host].maps["state"].lookup(bytes(4))
        assert raw is not None
        return STATE.unpack(raw)


@pytest.fixture
def seq_hosts(kernel: None) -> Iterator[SeqHosts]:
    """seq_transport.py loaded on both hosts of a two-host topology, @xdp attached."""
    with Topology("two-hosts") as topo:
        a, b = topo.host("a"), topo.host("b")
        objects = {}
        for me, peer in ((a, b), (b, a)):
            obj = topo.own(load_object(compiled("seq_transport.py").elf, f"seq_{me.name}"),
                           me.name)
            obj.maps["config"].update(bytes(4), me.mac_bytes + peer.mac_bytes + struct.pack(
                "<II", int.from_bytes(socket.inet_aton(me.ip), "big"),
                int.from_bytes(socket.inet_aton(peer.ip), "big")))
            topo.attach(me.name, obj.programs["rx"])
            objects[me.name] = obj
        yield SeqHosts(topo, a, b, objects)


def wait_for(predicate: object, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.005)
    return False


def test_egress_stamps_and_gen_acks_each_batch(seq_hosts: SeqHosts) -> None:
    h = seq_hosts
    count = 50
    with XskSocket(h.b.interface) as xsk, \
            Gen(h.objects["b"].programs["ack"], h.b.interface) as gen, \
            Egress(h.objects["a"].programs["stamp"], h.a.interface) as egress:
        xsk.register(h.objects["b"].maps["xsks"])
        app_b = Endpoint(xsk, gen=gen)
        received: list[bytes] = []
        for i in range(count):
            assert egress.send([frame(h.a, h.b, 9005, 9005, bytes(4) + b"data%03d" % i)]) == 1
            received += app_b.recv(64, timeout=1.0)
        assert [struct.unpack_from("!I", f, 42)[0] for f in received] == \
            list(range(1, count + 1))
        assert [f[46:] for f in received] == [b"data%03d" % i for i in range(count)]
        assert gen.sent == count  # one ACK per batch, and each batch here is one frame
        assert wait_for(lambda: h.state("a")[2] == count)
        next_seq, _, highest_acked, _, _, _, acks_received = h.state("a")
        assert (next_seq, highest_acked, acks_received) == (count, count, count)
        _, highest_seen, _, ack_due, received_b, acks_sent, _ = h.state("b")
        assert (highest_seen, ack_due, received_b, acks_sent) == (count, 0, count, count)


@pytest.mark.parametrize("asked_by", ["flag", "ring"])
def test_gen_runs_when_a_program_asks(seq_hosts: SeqHosts, asked_by: str) -> None:
    h = seq_hosts
    maps = h.objects["b"].maps
    how = {"flag": (maps["wake"], bytes(4))} if asked_by == "flag" else {"ring": maps["asks"]}
    with XskSocket(h.b.interface) as xsk, \
            Gen(h.objects["b"].programs["ack"], h.b.interface) as gen, \
            GenPump(gen, **how),  \
            Egress(h.objects["a"].programs["stamp"], h.a.interface) as egress:
        xsk.register(h.objects["b"].maps["xsks"])
        egress.send([frame(h.a, h.b, 9005, 9005, bytes(4) + b"x") for _ in range(20)])
        assert wait_for(lambda: h.state("a")[2] == 20)  # the last ACK carries seq 20
        assert len(xsk.recv(64, timeout=0)) == 20
        # (the pump counts a round's frames once its run returns: the ACK can be at host a
        # before that)
        assert wait_for(lambda: gen.sent >= 1) and gen.sent <= 20


def test_a_pump_asked_from_user_space_runs_at_once(seq_hosts: SeqHosts) -> None:
    """`ask()` wakes the pump without waiting for its next look at the flag (here every 10
    s), and `stop()` does not wait for that look either."""
    h = seq_hosts
    maps = h.objects["b"].maps
    with XskSocket(h.b.interface) as xsk, \
            Gen(h.objects["b"].programs["ack"], h.b.interface) as gen, \
            Egress(h.objects["a"].programs["stamp"], h.a.interface) as egress:
        xsk.register(h.objects["b"].maps["xsks"])
        pump = GenPump(gen, flag=(maps["wake"], bytes(4)), interval=10.0)
        try:
            time.sleep(0.05)                        # the pump is in its first long wait
            egress.send([frame(h.a, h.b, 9005, 9005, bytes(4) + b"x") for _ in range(20)])
            assert not wait_for(lambda: h.state("a")[2] == 20, timeout=0.3)
            pump.ask()
            assert wait_for(lambda: h.state("a")[2] == 20, timeout=1.0)
        finally:
            start = time.monotonic()
            pump.stop()
            assert time.monotonic() - start < 1.0


def test_send_until_refused_stops_at_the_first_frame_not_sent(kernel: None) -> None:
    with Topology("two-hosts") as topo:
        a, b = topo.host("a"), topo.host("b")
        obj = topo.own(load_object(compiled("verdicts.py").elf, "verdicts"), "a")
        with XskSocket(a.interface) as xsk, \
                Egress(obj.programs["choose"], a.interface) as egress:
            xsk.register(obj.maps["xsks"])
            frames = [frame(a, b, 9005, 7000, bytes([v]) + b"x") for v in (0, 0, 2, 0)]
            sent, verdict, back = egress.send_until_refused(frames)
            assert (sent, verdict, back) == (2, 4, frames[2])       # XDP_REDIRECT
            assert (egress.frames, egress.sent, egress.returned) == (3, 2, 1)
            assert egress.take_returned(8) == []                    # the caller has it
            assert egress.send_until_refused(frames[:2]) == (2, 3, None)

"""Live frames and the hooks built on them: injection delivers every frame, @egress runs on
every frame the application sends, @gen answers after each batch or when asked."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from etran.runtime.afxdp import XskSocket
from etran.runtime.attach import tx_object
from etran.runtime.hooks import Egress, Endpoint, Gen, GenPump
from etran.runtime.inject import run_live
from etran.runtime.loader import LoadedObject, load_object
from etran.runtime.topology import Host, Topology

from .conftest import compiled, frame

pytestmark = pytest.mark.netns

STATE = struct.Struct("<4I3Q")  # State in seq_transport.py


def test_live_injection_delivers_every_frame(live_frames: None) -> None:
    count = 1000
    with Topology("two-hosts") as topo, tx_object() as tx:
        a, b = topo.host("a"), topo.host("b")
        with a.udp_socket(7000, buffer_bytes=16 << 20) as server:
            run_live(tx.programs["etran_tx"], frame(b, a, 9005, 7000, b"live"), b.interface,
                     repeat=count)
            got = [server.recvfrom(100)[0] for _ in range(count)]
        assert got == [b"live"] * count


def test_live_injection_without_a_peer_program_loses_frames(live_frames: None) -> None:
    """Why every switch port runs XDP_PASS: native XDP_TX to a veth whose peer has no program
    vanishes, and the syscall still succeeds."""
    with Topology("two-hosts", switch_xdp=False) as topo, tx_object() as tx:
        a, b = topo.host("a"), topo.host("b")
        with a.udp_socket(7000, timeout=0.2) as server:
            run_live(tx.programs["etran_tx"], frame(b, a, 9005, 7000, b"lost"), b.interface,
                     repeat=10)
            with pytest.raises(socket.timeout):
                server.recvfrom(100)


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
def seq_hosts(live_frames: None) -> Iterator[SeqHosts]:
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
        assert 1 <= gen.sent <= 20

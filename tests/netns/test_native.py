"""@egress run natively on the far end of the application's veth (etran.runtime.native): the
same verdicts keep their meaning, nothing the application sends leaves unseen by the
program, and the pair goes away with the path."""

from __future__ import annotations

import socket
import struct
import time

import pytest

from etran.pipeline import check_file, compile_program
from etran.runtime import netns
from etran.runtime.errors import EtranRuntimeError
from etran.runtime.hooks import EgressPump
from etran.runtime.loader import LoadedObject, load_object
from etran.runtime.native import APP_IF, EGRESS_IF, NativeEgress
from etran.runtime.topology import Topology

from .conftest import HERE, compiled, frame

pytestmark = pytest.mark.netns


def native(name: str) -> bytes:
    return compile_program(check_file(HERE / name), native_egress=True).elf


def test_native_egress_keeps_every_verdicts_meaning(kernel: None) -> None:
    """XDP_TX leaves the host through its interface, XDP_REDIRECT comes back to the
    application's socket as the program left it, XDP_DROP and XDP_PASS go nowhere (not to
    the host's stack either)."""
    with Topology("two-hosts") as topo:
        a, b = topo.host("a"), topo.host("b")
        obj = topo.own(load_object(native("verdicts.py"), "verdicts"), "a")
        with b.udp_socket(7000, timeout=1.0) as server, a.udp_socket(7001, timeout=0.2) as own, \
                NativeEgress(obj.maps, obj.programs["choose"], a.interface) as path:
            assert path.xsk is not None
            path.xsk.register(obj.maps["xsks"])      # where the program returns frames to
            sent = [frame(a, b, 9005, 7000, bytes([v]) + b"verdict") for v in (0, 1, 2, 0, 3)]
            assert path.send(sent) == 5
            assert [server.recvfrom(100)[0] for _ in range(2)] == [b"\0verdict"] * 2
            back: list[bytes] = []
            deadline = time.monotonic() + 1
            while not back and time.monotonic() < deadline:
                back = path.recv_returned(8, timeout=0.1)
            assert back == [sent[2]]
            server.settimeout(0.2)
            with pytest.raises(socket.timeout):   # dropped, returned and passed never left
                server.recvfrom(100)
            # XDP_PASS reached no stack of the host either
            to_self = frame(a, a, 9005, 7001, b"\3to the host")
            path.send([to_self])
            with pytest.raises(socket.timeout):
                own.recvfrom(100)
            assert path.recv_returned(8, timeout=0.1) == []


def test_nothing_leaves_without_passing_the_program(kernel: None) -> None:
    """Every frame the application transmits is seen by @egress: the program counts 300 of
    300, and only those it sends arrive."""
    with Topology("two-hosts") as topo:
        a, b = topo.host("a"), topo.host("b")
        obj = topo.own(load_object(native("seq_transport.py"), "seq"), "a")
        with b.udp_socket(7000, timeout=1.0, buffer_bytes=8 << 20) as server, \
                NativeEgress(obj.maps, obj.programs["stamp"], a.interface) as path:
            frames = [frame(a, b, 9005, 7000, struct.pack("!I", 0) + b"%04d" % i)
                      for i in range(300)]
            for at in range(0, 300, 50):
                path.send(frames[at:at + 50])
            got = [server.recvfrom(100)[0] for _ in range(300)]
            # stamped 1 to 300 by the program, in the order sent
            assert [struct.unpack("!I", g[:4])[0] for g in got] == list(range(1, 301))
            assert [g[4:] for g in got] == [b"%04d" % i for i in range(300)]
            assert struct.unpack_from("<I", obj.maps["state"].lookup(bytes(4)) or b"")[0] == 300


def test_the_pair_is_one_per_host_and_goes_with_the_path(kernel: None) -> None:
    with Topology("two-hosts") as topo:
        a = topo.host("a")
        plain = topo.own(load_object(compiled("verdicts.py").elf, "plain"), "a")
        with pytest.raises(EtranRuntimeError, match="not a native build"):
            NativeEgress(plain.maps, plain.programs["choose"], a.interface)
        obj = topo.own(load_object(native("verdicts.py"), "verdicts"), "a")
        with NativeEgress(obj.maps, obj.programs["choose"], a.interface):
            assert {APP_IF, EGRESS_IF} <= set(netns.interfaces(a.netns))
            with pytest.raises(EtranRuntimeError, match="one native egress path per host"):
                NativeEgress(obj.maps, obj.programs["choose"], a.interface)
        assert not {APP_IF, EGRESS_IF} & set(netns.interfaces(a.netns))
        # a pair a dead process left (no program on it any more) is replaced
        with netns.netlink(a.netns) as ipr:
            ipr.link("add", ifname=APP_IF, kind="veth", peer=EGRESS_IF)
        with NativeEgress(obj.maps, obj.programs["choose"], a.interface) as path:
            assert path.xsk is not None
        assert not {APP_IF, EGRESS_IF} & set(netns.interfaces(a.netns))


def test_an_egress_pump_pushes_its_frame_through_the_native_path(kernel: None) -> None:
    """The pump's frame goes through the program like the application's (how a timer's
    request becomes a frame the program decides about)."""
    with Topology("two-hosts") as topo:
        a, b = topo.host("a"), topo.host("b")
        obj: LoadedObject = topo.own(load_object(native("seq_transport.py"), "seq"), "a")
        with b.udp_socket(7000, timeout=1.0) as server, \
                NativeEgress(obj.maps, obj.programs["stamp"], a.interface) as path:
            pump = EgressPump(path, frame(a, b, 9005, 7000, bytes(4) + b"pumped"),
                              flag=(obj.maps["wake"], bytes(4)), interval=0.001)
            try:
                pump.ask()
                assert server.recvfrom(100)[0] == struct.pack("!I", 1) + b"pumped"
            finally:
                pump.stop()
            assert pump.sent == 1

"""The runtime's "done" test: a reliable transport written in the language, between two hosts,
over a link that drops frames.

examples/reliable_datagram.py runs on hosts a and b; examples/impair_drop.py runs on the
switch port facing a (the link) and drops chosen DATA frames. A's application sends frames
through AF_XDP and @egress (which stamps sequence numbers and arms the retransmission timer);
B's @xdp delivers in-order frames to B's application socket; B's @gen acknowledges after
each batch; A's @xdp consumes the ACKs. When a drop leaves data unacknowledged, A's @timer
asks for a TIMEOUT frame, the runtime's EgressPump pushes it through A's egress, and the
application gets a go-back notice and resends from its buffer. The applications only handle
frames; everything the tests read from the kernel goes through the typed map views.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from etran.backend.emit import CompiledObject
from etran.pipeline import compile_file
from etran.runtime import runs
from etran.runtime.afxdp import XskSocket
from etran.runtime.hooks import Egress, EgressPump, Endpoint, Gen
from etran.runtime.loader import LoadedObject, load_object
from etran.runtime.topology import Host, Topology
from etran.runtime.typed import TypedMap, typed_maps

from .conftest import frame

pytestmark = pytest.mark.netns

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HEADER = struct.Struct("!BBHIII")  # Datagram in reliable_datagram.py
HEADER_AT = 14 + 20 + 8
FLOW = 7

_compiled: dict[str, CompiledObject] = {}


def example(name: str) -> CompiledObject:
    if name not in _compiled:
        _compiled[name] = compile_file(EXAMPLES / f"{name}.py")
    return _compiled[name]


def wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


@dataclass
class Link:
    """Two hosts running the transport, the impairment on a's link, and typed maps of all."""

    topo: Topology
    a: Host
    b: Host
    objects: dict[str, LoadedObject]
    maps: dict[str, dict[str, TypedMap]]   # "a", "b", "link" -> map name -> typed view
    constants: dict[str, int]

    def tx_flow(self) -> dict[str, Any]:
        return self.maps["a"]["tx_flows"][{"peer": self.b.ip, "flow": FLOW}]

    def rx_flow(self) -> dict[str, Any]:
        return self.maps["b"]["rx_flows"][{"peer": self.a.ip, "flow": FLOW}]


@pytest.fixture
def link(kernel: None) -> Iterator[Link]:
    rd, impair = example("reliable_datagram"), example("impair_drop")
    with Topology("two-hosts") as topo:
        a, b = topo.host("a"), topo.host("b")
        objects = {h: topo.own(load_object(rd.elf, f"rd_{h}"), h) for h in ("a", "b")}
        objects["link"] = topo.own(load_object(impair.elf, "impair"))
        maps = {h: typed_maps(objects[h], rd.program, pretty=True) for h in ("a", "b")}
        maps["link"] = typed_maps(objects["link"], impair.program)
        for h in ("a", "b"):
            topo.attach(h, objects[h].programs["receive"])
        consts = rd.program.constants
        (datagram,) = [s for s in rd.program.structs if s.name == "Datagram"]
        offset = {f.name: f.offset for f in datagram.fields}
        maps["link"]["rule"][0] = {"port": consts["PORT"], "key_offset": offset["seq"],
                                   "kind_offset": offset["kind"], "kind": consts["DATA"],
                                   "match_kind": True}
        topo.set_link_program("a", objects["link"].programs["impair"])
        yield Link(topo, a, b, objects, maps, consts)
    assert not runs.find_objects(topo.run_id)


@dataclass
class Sender:
    """A's application: keeps every frame it sent, and on a go-back notice resends from
    where the notice says, with the notice's epoch."""

    app: Endpoint
    link: Link
    payloads: list[bytes]
    epoch: int = 0
    sent: int = 0                        # DATA frames handed to egress
    notices: list[tuple[int, int]] = field(default_factory=list)   # (epoch, resume at)

    def data(self, index: int) -> bytes:
        c = self.link.constants
        return frame(self.link.a, self.link.b, c["PORT"], c["PORT"],
                     HEADER.pack(c["DATA"], 0, self.epoch, FLOW, 0, 0) + self.payloads[index])

    def send(self, indexes: range) -> None:
        self.sent += self.app.send([self.data(i) for i in indexes])

    def read_notices(self) -> int | None:
        """Where to resume, from the latest notice waiting on the socket (None: no notice)."""
        resume = None
        for notice in self.app.recv(64, timeout=0):
            kind, _, epoch, flow, seq, _ = HEADER.unpack_from(notice, HEADER_AT)
            assert (kind, flow) == (self.link.constants["TIMEOUT"], FLOW), notice.hex()
            assert notice[30:34] == bytes(map(int, self.link.b.ip.split(".")))  # the peer
            self.notices.append((epoch, seq))
            self.epoch, resume = epoch, seq
        return resume


@dataclass
class Exchange:
    sender: Sender
    received: list[bytes]
    pump: EgressPump
    egress: Egress
    gen: Gen


def exchange(link: Link, count: int, drops: dict[int, int],
             send_all: Callable[[Sender, Endpoint, list[bytes]], None]) -> Exchange:
    """Run the transport: the impairment drops seq s drops[s] times; ``send_all`` sends the
    first transmission of every frame (receiving on b meanwhile as it likes); then both
    applications run until b has every frame and a has every ACK, or 10 s pass."""
    victims = link.maps["link"]["victims"]
    for seq, times in drops.items():
        victims[seq] = {"remaining": times}
    payloads = [b"frame %04d " % i + bytes(i % 32) for i in range(count)]
    a, b, objects = link.a, link.b, link.objects
    tick = frame(a, b, link.constants["PORT"], link.constants["PORT"],
                 HEADER.pack(link.constants["TIMEOUT"], 0, 0, 0, 0, 0))
    with XskSocket(a.interface) as xsk_a, XskSocket(b.interface) as xsk_b, \
            Egress(objects["a"].programs["send"], a.interface) as egress, \
            Gen(objects["b"].programs["ack"], b.interface) as gen, \
            EgressPump(egress, tick, flag=(objects["a"].maps["wake"], bytes(4))) as pump:
        xsk_a.register(objects["a"].maps["app_sockets"])
        xsk_b.register(objects["b"].maps["app_sockets"])
        app_a, app_b = Endpoint(xsk_a, egress=egress), Endpoint(xsk_b, gen=gen)
        sender = Sender(app_a, link, payloads)
        received: list[bytes] = []
        send_all(sender, app_b, received)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            received += app_b.recv(64, timeout=0.002)   # gen answers after each batch
            resume = sender.read_notices()
            if resume is not None:
                sender.send(range(resume, count))
            if len(received) >= count and link.tx_flow()["snd_una"] == count:
                break
        # let the last ACKs land and any go-back in progress finish, then take its notice
        assert wait_for(lambda: link.tx_flow()["acks"] == gen.sent)
        assert wait_for(lambda: not link.tx_flow()["retransmit"])
        time.sleep(0.01)
        sender.read_notices()
    return Exchange(sender, received, pump, egress, gen)


def check_accounting(link: Link, x: Exchange, count: int, drops: dict[int, int]) -> None:
    """Every frame delivered once, in order; the kernel's counters equal what the
    applications observed and what the other programs counted."""
    assert [f[HEADER_AT + HEADER.size:] for f in x.received] == x.sender.payloads
    assert [HEADER.unpack_from(f, HEADER_AT)[4] for f in x.received] == list(range(count))
    tx, rx = link.tx_flow(), link.rx_flow()
    totals = link.maps["link"]["totals"][0]
    # b: what its application got is what its kernel state says it delivered
    assert rx["delivered"] == len(x.received) == count and rx["expected"] == count
    assert rx["acks_sent"] == x.gen.sent and not rx["ack_queued"]
    # a: everything acknowledged; every ACK b made reached a; the timer fired, and each
    # timeout became one go-back and one notice to the application
    assert tx["snd_una"] == tx["snd_nxt"] == tx["snd_max"] == count
    assert tx["acks"] == x.gen.sent
    assert tx["timeouts"] >= 1
    assert tx["timeouts"] == tx["go_backs"] == len(x.sender.notices) == tx["epoch"]
    assert [e for e, _ in x.sender.notices] == list(range(1, tx["go_backs"] + 1))
    assert x.pump.sent >= tx["go_backs"] and not tx["retransmit"]
    # every DATA frame the application sent was stamped or dropped as stale
    assert tx["sent"] + tx["stale"] == x.sender.sent
    assert x.egress.frames == x.sender.sent + x.pump.sent
    # the link saw every stamped frame and dropped each victim as often as asked
    victims = dict(link.maps["link"]["victims"].items())
    assert victims == {s: {"remaining": 0, "dropped": n} for s, n in drops.items()}
    assert totals == {"seen": tx["sent"], "dropped": sum(drops.values())}
    # b saw every frame the link passed: delivered, duplicate or after a gap
    assert rx["delivered"] + rx["duplicates"] + rx["out_of_order"] == tx["sent"] - \
        totals["dropped"]
    assert rx["out_of_order"] > 0


def test_every_frame_is_delivered_once_after_retransmission(link: Link) -> None:
    count, drops = 100, {10: 1, 50: 1, 80: 1}

    def burst(sender: Sender, app_b: Endpoint, received: list[bytes]) -> None:
        sender.send(range(count))

    x = exchange(link, count, drops, burst)
    check_accounting(link, x, count, drops)
    assert link.maps["link"]["totals"][0]["dropped"] == 3
    assert link.tx_flow()["stale"] == 0        # the application was never behind a go-back


def test_a_slow_application_loses_nothing_to_stale_frames(link: Link) -> None:
    """The application sends in chunks and reads no notice until it has sent everything, so
    timeouts (and, with no resend, repeated ones) happen while it still sends: the frames it
    sends after a go-back carry an old epoch and egress drops them; seq 30 is dropped twice,
    so a second loss follows the first recovery."""
    count, drops = 100, {10: 1, 30: 2}
    rto = link.constants["RTO_NS"] / 1e9

    def slowly(sender: Sender, app_b: Endpoint, received: list[bytes]) -> None:
        for start in range(0, count, 10):
            sender.send(range(start, start + 10))
            until = time.monotonic() + 1.5 * rto
            while time.monotonic() < until:
                received.extend(app_b.recv(64, timeout=0.002))

    x = exchange(link, count, drops, slowly)
    check_accounting(link, x, count, drops)
    assert link.tx_flow()["stale"] > 0
    assert link.tx_flow()["go_backs"] >= 2

"""Homa between network namespaces: RPCs of every size byte-exact, on clean and lossy links,
incast, SRPT, grant discipline, malformed and forged packets, and dead peers' state
reclaimed by the data path's timers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from etran.homa import HomaStack, Request, Server, wire
from etran.homa.stack import REPAIR_LOOK, REPAIR_SPAN
from etran.pipeline import compile_file
from etran.runtime.loader import load_object
from etran.runtime.topology import Host, Topology
from etran.runtime.typed import typed_maps
from etran.testing.packets import checksum

LINK = Path(__file__).resolve().parents[2] / "etran" / "transports" / "homa_link.py"
PORT = 4000
SIZES = (1, 100, wire.PAYLOAD, wire.PAYLOAD + 1, 4_000, 100_000, 1_000_000)


@pytest.fixture
def topo(kernel: None) -> Iterator[Topology]:
    with Topology("two-hosts") as t:
        yield t


class Echo:
    """A server thread answering each request with `answer(request payload)`."""

    def __init__(self, server: Server, answer: Callable[[bytes], bytes] = lambda b: b[::-1],
                 delay: float = 0.0) -> None:
        self.server = server
        self.answer = answer
        self.delay = delay
        self.served = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                request = self.server.receive(timeout=0.05)
            except TimeoutError:
                continue
            if self.delay:
                time.sleep(self.delay)
            self.server.reply(request, self.answer(request.payload))
            self.served += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def payload(size: int, seed: int = 0) -> bytes:
    return bytes((i * 7 + seed) % 251 for i in range(size))


def settle(*stacks: HomaStack, timeout: float = 2.0) -> None:
    """Wait until no RPC is left in the data paths (ACKs arrive after the responses)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and any(s.rpcs() for s in stacks):
        time.sleep(0.01)


def gate_receiver(stack: HomaStack) -> threading.Event:
    """Hold `stack`'s library off its AF_XDP ring until the returned event is set (what
    arrives meanwhile waits there, or overflows it)."""
    gate = threading.Event()
    take = stack.xsk.recv

    def gated(max_frames: int = 64, timeout: float | None = None) -> list[bytes]:
        gate.wait(10)
        return take(max_frames, timeout=timeout)
    stack.xsk.recv = gated                       # type: ignore[method-assign]
    return gate


def lossy(topo: Topology, host: str, drop_every: int, kinds: int = 0) -> dict[str, Any]:
    """Drop every `drop_every`-th Homa packet (of `kinds`, bit 0 DATA, bit 1 GRANT...) that
    `host` sends."""
    compiled = compile_file(LINK)
    loaded = topo.own(load_object(compiled.elf, f"hlink_{host}"), None)
    maps = typed_maps(loaded, compiled.program)
    maps["config"][0] = {"drop_every": drop_every, "kinds": kinds}
    topo.set_link_program(host, loaded.programs["homa_link"])
    return maps


def test_rpcs_of_every_size_complete_byte_exact(topo: Topology) -> None:
    """One at a time and all at once, from one packet to 1 MB; then nothing is left in
    either data path (the client's ACK frees the server's state)."""
    b = topo.host("b")
    with HomaStack(topo, "a") as client_stack, HomaStack(topo, "b") as server_stack:
        echo = Echo(server_stack.server(PORT))
        client = client_stack.client()
        for size in SIZES:
            request = payload(size, size)
            assert client.call((b.ip, PORT), request, timeout=10) == request[::-1], size
        futures = [(client.call_async((b.ip, PORT), payload(s, i)), payload(s, i))
                   for i, s in enumerate(SIZES * 3)]
        for future, request in futures:
            assert future.result(timeout=20) == request[::-1]
        echo.stop()
        settle(client_stack, server_stack)
        assert client_stack.rpcs() == [] and server_stack.rpcs() == []
        for stack in (client_stack, server_stack):
            c = stack.counters()
            assert c["bad_data"] == c["bad_header"] == c["aborted"] == 0, c
        assert server_stack.counters()["grants_sent"] > 0       # the 1 MB request
        assert client_stack.counters()["grants_sent"] > 0       # ... and its response


def test_a_handler_answers_each_request_on_the_receiving_thread(
        topo: Topology, capsys: pytest.CaptureFixture[str]) -> None:
    """`server(port, handler=)`: each request goes to the handler on the library's receiving
    thread, as it comes in, and its result is the response (byte-exact, every size). A
    handler that returns None replies later from another thread; one that raises leaves
    that request unanswered, is counted and said on stderr, and the server goes on."""
    b = topo.host("b")
    threads: set[int] = set()
    later: list[Request] = []

    def handler(request: Request) -> bytes | None:
        threads.add(threading.get_ident())
        if request.payload == b"later":
            later.append(request)
            return None
        if request.payload == b"raise":
            raise KeyError("no such record")
        return request.payload[::-1]

    with HomaStack(topo, "a") as client_stack, HomaStack(topo, "b") as server_stack:
        server = server_stack.server(PORT, handler=handler)
        with pytest.raises(ValueError, match="handler"):
            server.receive(timeout=0.01)
        client = client_stack.client()
        futures = [(client.call_async((b.ip, PORT), payload(s, i)), payload(s, i))
                   for i, s in enumerate(SIZES * 2)]
        for future, request in futures:
            assert future.result(timeout=20) == request[::-1]
        assert threads == {server_stack._thread.ident}

        with pytest.raises(TimeoutError):
            client.call((b.ip, PORT), b"raise", timeout=0.5)
        assert server.handler_errors == 1 and isinstance(server.last_error, KeyError)
        assert "raised KeyError('no such record')" in capsys.readouterr().err

        pending = client.call_async((b.ip, PORT), b"later")
        deadline = time.monotonic() + 5
        while not later and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not pending.done()
        replier = threading.Thread(target=server.reply, args=(later[0], b"done later"))
        replier.start()
        replier.join()
        assert pending.result(timeout=5) == b"done later"
        assert client.call((b.ip, PORT), b"after", timeout=5) == b"retfa"
        assert server.handler_errors == 1


def test_packets_carry_their_priority(topo: Topology) -> None:
    """One-packet messages at 7, unscheduled bytes by size from the cutoffs, scheduled
    bytes at the priority of the GRANT (3 for the only message being granted)."""
    a, b = topo.host("a"), topo.host("b")
    with b.entered():
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    with raw, HomaStack(topo, "a") as stack:
        raw.bind((b.ifname, 0x0800))
        raw.settimeout(0.2)
        client = stack.client()
        seen: dict[tuple[int, int], int] = {}
        for size in (100, 5_000, 200_000):
            client.call_async((b.ip, PORT), payload(size))
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            try:
                p = wire.parse(raw.recv(2048))
            except TimeoutError:
                continue
            if p is not None and p.kind == wire.DATA and p.src == a.ip:
                seen[(p.length, p.offset)] = p.tos >> 5
                if p.length == 200_000 and p.offset == 0:
                    # grant the rest, as a receiver would, at priority 3
                    raw.send(wire.control(wire.GRANT, src_mac=b.mac_bytes, dst_mac=a.mac_bytes,
                                          src=b.ip, dst=a.ip, sport=PORT, dport=p.sport,
                                          rpc_id=p.rpc_id, from_client=False, offset=200_000,
                                          priority=3))
    assert seen[(100, 0)] == 7
    assert seen[(5_000, 0)] == 6 and seen[(5_000, 1_400)] == 6      # up to cutoffs[1]
    assert seen[(200_000, 0)] == 4                                   # past cutoffs[2]
    unscheduled = [o for (n, o) in seen if n == 200_000 and o < 60_000]
    assert len(unscheduled) == -(-60_000 // wire.PAYLOAD)
    scheduled = {p for (n, o), p in seen.items() if n == 200_000 and o >= 60_000}
    assert scheduled == {3}


@pytest.mark.parametrize("native", [True, False], ids=["native-egress", "test-run-egress"])
def test_unscheduled_bytes_stop_at_rtt_bytes_without_grants(topo: Topology,
                                                            native: bool) -> None:
    """A receiver that never grants (but answers BUSY when asked): only the packets that fit
    in the first rtt_bytes leave. With test runs the library offers egress the whole message
    and egress hands back the first packet past the grant; on the native path the library
    stops at the grant itself, and a packet sent past it anyway (as a library that ignored
    the grant would) is handed back by egress and never reaches the receiver."""
    a, b = topo.host("a"), topo.host("b")
    with b.entered():
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    with raw, HomaStack(topo, "a", rtt_bytes=20_000, native_egress=native) as stack:
        raw.bind((b.ifname, 0x0800))
        raw.settimeout(0.2)
        client = stack.client()
        client.call_async((b.ip, PORT), payload(500_000))
        if native:
            assert stack.native is not None
            with stack._lock:
                (call,) = stack._calls.values()
            stack.native.send(call.out.frames[20:22])     # 28,000 to 30,800: not granted
        got = 0
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            try:
                p = wire.parse(raw.recv(2048))
            except TimeoutError:
                continue
            if p is not None and p.kind == wire.DATA and p.src == a.ip and \
                    not p.flags & wire.RETRANSMIT:
                got = max(got, p.offset + len(p.payload))
            elif p is not None and p.kind == wire.RESEND and p.src == a.ip:
                # the client asks whether we are there: yes, busy (so it does not give up)
                raw.send(wire.control(wire.BUSY, src_mac=b.mac_bytes, dst_mac=a.mac_bytes,
                                      src=b.ip, dst=a.ip, sport=PORT, dport=p.sport,
                                      rpc_id=p.rpc_id, from_client=False))
        whole_packets = 20_000 // wire.PAYLOAD * wire.PAYLOAD      # 19,600
        assert got == whole_packets
        (rpc,) = stack.rpcs()
        assert rpc["sent"] == whole_packets and rpc["granted"] == 20_000
        # natively: exactly the two sent past the grant (the library sent none itself)
        over = stack.counters()["over_grant"]
        assert over == 2 if native else over >= 1


def test_drops_are_recovered_by_resends(topo: Topology) -> None:
    """Every 9th DATA packet each way, and every 3rd GRANT, lost: every RPC completes,
    through the receivers' RESENDs."""
    b = topo.host("b")
    links = [lossy(topo, "a", 9, kinds=0b11), lossy(topo, "b", 9, kinds=0b11)]
    with HomaStack(topo, "a") as client_stack, HomaStack(topo, "b") as server_stack:
        echo = Echo(server_stack.server(PORT))
        client = client_stack.client()
        futures = [(client.call_async((b.ip, PORT), payload(s, i)), payload(s, i))
                   for i, s in enumerate((1, 4_000, 100_000, 300_000, 1_000_000))]
        for future, request in futures:
            assert future.result(timeout=30) == request[::-1]
        echo.stop()
        dropped = sum(sum(link["state"][0]["dropped"]) for link in links)
        assert dropped >= 20
        resends = client_stack.counters()["resends_sent"] + \
            server_stack.counters()["resends_sent"]
        assert resends >= 1
        assert client_stack.counters()["aborted"] == server_stack.counters()["aborted"] == 0


def test_packets_lost_on_a_full_ring_are_asked_for_again(topo: Topology) -> None:
    """The data path takes a DATA packet before the kernel puts it on the AF_XDP socket's
    ring, and a full ring loses it there: with a 64-frame ring under eight long requests
    at once it does, the library has the lost runs forgotten and sent again (REPAIR), and
    every RPC completes byte-exact. Before, such an RPC waited for ever: the data path held
    it whole, and dropped the copies as duplicates."""
    b = topo.host("b")
    with HomaStack(topo, "a") as client_stack, \
            HomaStack(topo, "b", ring_size=64) as server_stack:
        # the receiver looks at its ring only once the unscheduled bytes of all eight
        # (344 packets) were sent: the ring overflows whatever the scheduler's speed
        gate = gate_receiver(server_stack)
        echo = Echo(server_stack.server(PORT), answer=lambda req: req[:64] + req[-64:])
        client = client_stack.client()
        requests = [payload(200_000 + 1_400 * i, i) for i in range(8)]
        futures = [client.call_async((b.ip, PORT), r) for r in requests]
        time.sleep(0.2)
        gate.set()
        for future, request in zip(futures, requests):
            assert future.result(timeout=30) == request[:64] + request[-64:]
        echo.stop()
        stats = server_stack.xsk.statistics()
        assert stats.rx_dropped + stats.rx_ring_full > 0, stats
        assert server_stack.counters()["repaired"] >= 1
        assert echo.served == len(requests)
        settle(client_stack, server_stack)


def test_the_receiver_takes_higher_priorities_first(topo: Topology) -> None:
    """Homa's priorities at the receiver's only queue: with a 50 KB request's 36 packets
    (unscheduled, priority 5) on the ring ahead of a one-packet request's (priority 7), the
    library handles the short one first and the server application gets it first."""
    b = topo.host("b")
    with HomaStack(topo, "a") as client_stack, HomaStack(topo, "b") as server_stack:
        gate = gate_receiver(server_stack)
        order: list[int] = []
        echo = Echo(server_stack.server(PORT),
                    answer=lambda req: order.append(len(req)) or b"ok")
        client = client_stack.client()
        long_call = client.call_async((b.ip, PORT), payload(50_000))
        time.sleep(0.05)
        short_call = client.call_async((b.ip, PORT), payload(100, 1))
        time.sleep(0.2)                          # every packet of both on the ring
        gate.set()
        assert short_call.result(timeout=10) == b"ok" and long_call.result(timeout=10) == b"ok"
        echo.stop()
        assert order == [100, 50_000]


def test_a_short_request_overtakes_the_backlog_the_library_holds(topo: Topology) -> None:
    """Frames taken off the ring wait in the library by priority, and the ring is looked at
    again every CHUNK frames handled: a one-packet request that arrives while four 50 KB
    requests' 144 packets (priority 5) are held is handled before the rest of them, and
    the server gets it first. (Taking a batch and handling all of it before looking again
    would answer it last.)"""
    b = topo.host("b")
    with HomaStack(topo, "a") as client_stack, HomaStack(topo, "b") as server_stack:
        order: list[int] = []
        server_stack.server(PORT, handler=lambda req: order.append(len(req.payload)) or b"ok")
        gate, second = threading.Event(), threading.Event()
        looks = [0]
        take = server_stack.xsk.recv

        def staged(max_frames: int = 64, timeout: float | None = None) -> list[bytes]:
            gate.wait(10)
            looks[0] += 1
            if looks[0] == 2:
                second.wait(10)                  # the short request is on the ring
            return take(max_frames, timeout=timeout)
        server_stack.xsk.recv = staged           # type: ignore[method-assign]
        client = client_stack.client()
        longs = [client.call_async((b.ip, PORT), payload(50_000, i)) for i in range(4)]
        time.sleep(0.2)                          # all their packets on the ring
        gate.set()                               # taken at once; CHUNK handled; a look
        deadline = time.monotonic() + 5
        while looks[0] < 2 and time.monotonic() < deadline:
            time.sleep(0.001)
        short = client.call_async((b.ip, PORT), payload(100, 1))
        time.sleep(0.05)
        second.set()
        assert short.result(timeout=10) == b"ok"
        assert all(f.result(timeout=10) == b"ok" for f in longs)
        assert order == [100] + [50_000] * 4


def test_a_stream_of_high_priority_frames_starves_no_message(topo: Topology) -> None:
    """A 50 KB request's 36 packets (priority 4) held by the library while every look at
    the ring brings 40 frames of priority 7 (copies of a one-packet request's, already
    answered): a priority passed over STARVE_CHUNKS chunks in a row goes first for one, so
    the long request is answered while the stream goes on (at about look 130), not after
    it (strict priorities hold it until look 375)."""
    b = topo.host("b")
    with HomaStack(topo, "a") as client_stack, HomaStack(topo, "b") as server_stack:
        answered: dict[int, int] = {}
        looks = [0]
        stream_for = 300                         # looks that bring a flood

        def handler(request: Request) -> bytes:
            answered.setdefault(len(request.payload), looks[0])
            return b"ok"
        server_stack.server(PORT, handler=handler)
        gate = threading.Event()
        flood: list[bytes] = []
        take = server_stack.xsk.recv

        def staged(max_frames: int = 64, timeout: float | None = None) -> list[bytes]:
            gate.wait(10)
            looks[0] += 1
            frames = take(max_frames, timeout=timeout)
            if not flood:
                flood.extend(f for f in frames if wire.priority(f) == 7)
            return frames + flood[:1] * 40 if flood and looks[0] < stream_for else frames
        server_stack.xsk.recv = staged           # type: ignore[method-assign]
        client = client_stack.client()
        short = client.call_async((b.ip, PORT), payload(100, 1))
        time.sleep(0.05)
        long_call = client.call_async((b.ip, PORT), payload(50_000))
        time.sleep(0.2)                          # both on the ring
        gate.set()
        assert short.result(timeout=10) == b"ok" and long_call.result(timeout=10) == b"ok"
        assert flood, "no priority-7 frame to copy"
        assert answered[50_000] < stream_for, answered


def test_losses_are_repaired_only_when_nothing_waits_to_be_handled(topo: Topology) -> None:
    """After the socket lost frames, the library asks for the packets the data path has and
    it does not (`_repair`) only at a look with nothing on the ring and nothing taken off
    it unhandled: frames still waiting there look lost too, and asking for them again had
    the senders send them over and over. A look that is not quiet keeps the time to repair
    open, so the repair comes at the next quiet one, however long the busy spell."""
    with HomaStack(topo, "b") as stack:
        stack._stop.set()                        # the receiving thread looks no more
        stack._thread.join()
        repairs: list[float] = []
        stack._repair = repairs.append           # type: ignore[method-assign]
        stack._lost_frames -= 1                  # the socket's count of losses moved
        t = time.monotonic()
        busy = [t + i * REPAIR_LOOK for i in range(int(3 * REPAIR_SPAN / REPAIR_LOOK))]
        for now in busy:
            stack._look_for_losses(now, quiet=False)
        assert repairs == []
        stack._look_for_losses(busy[-1] + REPAIR_LOOK, quiet=True)
        assert repairs == [busy[-1] + REPAIR_LOOK]
        stack._look_for_losses(busy[-1] + 2 * REPAIR_SPAN, quiet=True)
        assert len(repairs) == 1                 # no losses since: the time to look closed


def test_incast_of_eight_senders(kernel: None) -> None:
    """Eight clients call one server at once, short and long messages mixed; all complete
    byte-exact, and the receiver's grants stay within the window and max_incoming."""
    window, limit = 50_000, 200_000
    with Topology("incast:8") as topo:
        r = topo.host("r")
        stacks = [HomaStack(topo, f"s{i}") for i in range(8)]
        try:
            with HomaStack(topo, "r", grant_window=window, max_incoming=limit) as receiver:
                echo = Echo(receiver.server(PORT), answer=lambda b: b[:16])
                futures = []
                for i, stack in enumerate(stacks):
                    client = stack.client()
                    for size in (300_000 if i % 2 else 1_000_000, 2_000, 10, 50_000):
                        request = payload(size, i)
                        futures.append((client.call_async((r.ip, PORT), request), request))
                worst = 0
                while not all(f.done() for f, _ in futures):
                    c = receiver.candidates()
                    used = [i for i, u in enumerate(c.get("used", [])) if u]
                    scheduled = [i for i in used if c["granted"][i] > 60_000]
                    for i in scheduled:
                        assert c["granted"][i] - c["received"][i] <= window + wire.PAYLOAD
                    worst = max(worst, sum(max(0, c["granted"][i] - max(c["received"][i],
                                                                          60_000))
                                           for i in scheduled))
                    time.sleep(0.002)
                for future, request in futures:
                    assert future.result(timeout=30) == request[:16]
                echo.stop()
                assert worst <= limit
                assert receiver.counters()["grants_sent"] > 0
                # every grant the scheduler decided: at most a window past what had arrived,
                # each message's grants rising to its end
                grants = receiver.grants()
                assert len(grants) >= receiver.counters()["grants_sent"] > 0
                assert all(g["offset"] - g["received"] <= window for g in grants)
                by_message: dict[tuple[int, int, int], list[int]] = {}
                for g in grants:
                    by_message.setdefault((g["id"], g["peer"], g["peer_port"]),
                                          []).append(g["offset"])
                assert len(by_message) == 8            # the eight long requests
                assert all(o == sorted(set(o)) for o in by_message.values())
                assert sorted(max(o) for o in by_message.values()) == \
                    [300_000] * 4 + [1_000_000] * 4      # each granted to its end
        finally:
            for stack in stacks:
                stack.close()


def test_incast_over_lossy_links(kernel: None) -> None:
    """incast:8 with every 11th DATA and GRANT lost on what the receiver and two senders
    send: one packet, a few packets, 100 KB and 1 MB from each sender, all byte-exact."""
    with Topology("incast:8") as topo:
        r = topo.host("r")
        links = [lossy(topo, name, 11, kinds=0b11) for name in ("r", "s0", "s5")]
        stacks = [HomaStack(topo, f"s{i}") for i in range(8)]
        try:
            with HomaStack(topo, "r") as receiver:
                echo = Echo(receiver.server(PORT), answer=lambda b: b[-32:])
                futures = []
                for i, stack in enumerate(stacks):
                    client = stack.client()
                    for size in (1, 4_000, 100_000, 1_000_000):
                        request = payload(size, i)
                        futures.append((client.call_async((r.ip, PORT), request), request))
                for future, request in futures:
                    assert future.result(timeout=60) == request[-32:]
                echo.stop()
                assert sum(sum(link["state"][0]["dropped"]) for link in links) >= 50
        finally:
            for stack in stacks:
                stack.close()


def test_a_client_closed_mid_request_is_reclaimed(topo: Topology) -> None:
    """A client stack closed while its 1 MB request is half sent (its data path stays
    attached but no application answers): the server's RPC goes, aborted by its timers (or
    answered UNKNOWN by the client's data path, whose own timers gave up first), and nothing
    of it is left."""
    b = topo.host("b")
    with HomaStack(topo, "b", grant_window=5_000, max_incoming=5_000) as server_stack:
        echo = Echo(server_stack.server(PORT))           # grants trickle: a slow request
        client_stack = HomaStack(topo, "a", rtt_bytes=20_000)
        client_stack.client().call_async((b.ip, PORT), payload(1_000_000))
        end = time.monotonic() + 2
        while not server_stack.rpcs() and time.monotonic() < end:
            time.sleep(0.002)
        assert server_stack.rpcs()                      # the request is arriving
        client_stack.close()
        end = time.monotonic() + 5
        while server_stack.rpcs() and time.monotonic() < end:
            time.sleep(0.05)
        echo.stop()
        assert server_stack.rpcs() == [] and server_stack.candidates()["used"] == [0] * 16
        c = server_stack.counters()       # its own timers gave up, or the client's did first
        assert c["aborted"] + c["peer_forgot"] == 1 and c["data_in"] < 715, c


def test_srpt_short_messages_finish_first_and_long_ones_finish(topo: Topology) -> None:
    """While a 1 MB request is being received, shorter ones sent after it complete first;
    under a steady stream of short requests the long one still completes. The receiver keeps
    as little incoming as one grant window, so SRPT is strict: the 200 KB request takes
    every grant while it is the shortest, and short messages do not queue behind the long
    one's bytes in the receiving application's socket. Payloads are built before the clock
    starts (building 1 MB in Python holds the interpreter for tens of milliseconds)."""
    b = topo.host("b")
    big, mid = payload(1_000_000), payload(200_000)
    shorts = [payload(5_000, i) for i in range(10)]
    steady = payload(5_000)
    with HomaStack(topo, "a") as client_stack, \
            HomaStack(topo, "b", grant_window=15_000, max_incoming=15_000) as server_stack:
        done: dict[str, float] = {}
        echo = Echo(server_stack.server(PORT), answer=lambda b: b[:8])
        client = client_stack.client()

        def when(name: str) -> Callable[[Future[bytes]], None]:
            return lambda _f: done.setdefault(name, time.monotonic())
        long = client.call_async((b.ip, PORT), big)
        long.add_done_callback(when("long"))
        end = time.monotonic() + 2
        while not server_stack.rpcs() and time.monotonic() < end:
            time.sleep(0.001)                     # the long one is arriving
        medium = client.call_async((b.ip, PORT), mid)
        medium.add_done_callback(when("medium"))
        first = []
        for i in range(10):                       # sent while the long one is arriving
            f = client.call_async((b.ip, PORT), shorts[i])
            f.add_done_callback(when(f"short{i}"))
            first.append(f)
        while not long.done():                    # and a steady load until it is whole
            client.call((b.ip, PORT), steady, timeout=10)
        assert long.result(timeout=30) == big[:8]
        assert medium.result(timeout=30) == mid[:8]
        for i, f in enumerate(first):
            assert f.result(timeout=10) == shorts[i][:8]
        echo.stop()
        order = sorted(done, key=done.__getitem__)
        assert order[-1] == "long", order


def forger(host: Host) -> socket.socket:
    with host.entered():
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    raw.bind((host.ifname, 0x0800))
    raw.settimeout(0.2)
    return raw


def client_of(a: Host, b: Host, sport: int) -> dict[str, Any]:
    """`wire.data_frames`'s addressing for a client on `a` (port `sport`) of b's PORT."""
    return {"src_mac": a.mac_bytes, "dst_mac": b.mac_bytes, "src": a.ip, "dst": b.ip,
            "sport": sport, "dport": PORT, "from_client": True}


def replies(raw: socket.socket, src: str, wait: float = 0.3) -> list[wire.Packet]:
    out, end = [], time.monotonic() + wait
    while time.monotonic() < end:
        try:
            p = wire.parse(raw.recv(2048))
        except TimeoutError:
            break
        if p is not None and p.src == src:
            out.append(p)
    return out


def truncated(frame: bytes, homa_bytes: int) -> bytes:
    """`frame` cut `homa_bytes` into its Homa header, its IPv4 header made to match (a
    bridge drops IPv4 packets shorter than their header says)."""
    ip = bytearray(frame[14:34])
    ip[2:4] = (20 + homa_bytes).to_bytes(2, "big")
    ip[10:12] = b"\0\0"
    ip[10:12] = checksum(bytes(ip)).to_bytes(2, "big")
    return frame[:14] + bytes(ip) + frame[34:34 + homa_bytes]


def test_forged_and_malformed_packets_leave_other_rpcs_intact(kernel: None) -> None:
    """Forged to the server from a host without Homa: a GRANT and a RESEND for an RPC it
    does not know (the RESEND is answered UNKNOWN), DATA past the message's end, an offset
    not on a packet boundary, a wrong packet size, a duplicate, a truncated header. Each is
    counted and dropped, and an RPC in flight from another host completes."""
    with Topology("incast:2") as topo:
        _a, f, r = topo.host("s0"), topo.host("s1"), topo.host("r")
        with HomaStack(topo, "r") as server_stack, HomaStack(topo, "s0") as client_stack:
            echo = Echo(server_stack.server(PORT), delay=0.2)
            big = payload(300_000)
            future = client_stack.client().call_async((r.ip, PORT), big)
            with forger(f) as raw:
                addr = {"src_mac": f.mac_bytes, "dst_mac": r.mac_bytes, "src": f.ip, "dst": r.ip,
                            "sport": 50000, "dport": PORT}
                before = server_stack.counters()
                raw.send(wire.control(wire.GRANT, **addr, rpc_id=1000, from_client=True,
                                      offset=9000))
                raw.send(wire.control(wire.RESEND, **addr, rpc_id=1002, from_client=True,
                                      offset=0, length=1400))
                answers = replies(raw, r.ip)
                assert [p.kind for p in answers if p.rpc_id == 1002] == [wire.UNKNOWN]
                assert not [p for p in answers if p.rpc_id == 1000]

                def data(rpc_id: int, length: int, offset: int, size: int) -> bytes:
                    (frame,) = wire.data_frames(**addr, rpc_id=rpc_id, from_client=True,
                                                message=bytes(size))
                    frame = bytearray(frame)
                    frame[50:58] = length.to_bytes(4, "big") + offset.to_bytes(4, "big")
                    return bytes(frame)
                raw.send(data(1004, 3_000, 4_200, 1_400))          # past the end
                raw.send(data(1006, 3_000, 700, 1_400))            # off a packet boundary
                raw.send(data(1008, 3_000, 1_400, 1_000))          # wrong size for its offset
                frame = data(1010, 3_000, 0, 1_400)
                raw.send(frame)
                raw.send(frame)                                    # a duplicate
                raw.send(truncated(frame, 10))                     # 10 bytes of header
                time.sleep(0.1)
                after = server_stack.counters()
            assert after["unknown_rpc"] - before["unknown_rpc"] == 1
            assert after["unknown_sent"] - before["unknown_sent"] == 1
            assert after["bad_data"] - before["bad_data"] == 3
            assert after["duplicates"] - before["duplicates"] == 1
            assert after["bad_header"] - before["bad_header"] == 1
            assert future.result(timeout=10) == big[::-1]
            echo.stop()


def test_dead_clients_state_is_reclaimed_by_the_timers(topo: Topology) -> None:
    """A client that sent part of a request and died: the server's RESENDs go unanswered
    and it aborts the RPC. A client that died before acknowledging a response: the server
    forgets the RPC after RECLAIM_TICKS."""
    a, b = topo.host("a"), topo.host("b")
    with HomaStack(topo, "b") as server_stack:
        echo = Echo(server_stack.server(PORT))
        raw = forger(a)
        with raw:
            addr = client_of(a, b, 50001)
            partial = wire.data_frames(**addr, rpc_id=2000, message=payload(100_000))
            for frame in partial[:5]:
                raw.send(frame)
            (whole,) = wire.data_frames(**addr, rpc_id=2002, message=b"ping")
            raw.send(whole)
            time.sleep(0.002)
            assert len(server_stack.rpcs()) == 2
            resends = [p for p in replies(raw, b.ip, wait=1.0) if p.kind == wire.RESEND]
            assert resends and all(p.rpc_id == 2000 and p.offset == 5 * wire.PAYLOAD
                                   for p in resends)
        settle(server_stack, timeout=3)
        echo.stop()
        assert server_stack.rpcs() == []
        c = server_stack.counters()
        assert c["aborted"] == 1 and c["reclaimed"] == 1


def test_an_rpc_whose_timer_never_ran_gets_one(topo: Topology) -> None:
    """The kernel can fail to start an RPC's timer (it allocates the timer's state without
    waiting). A request whose first five packets came and whose timer is gone (the entry
    rewritten from user space, which frees it: no tick follows) is found idle by the
    library, which has gen start the timer (ARM): its RESENDs for the rest follow, and
    unanswered it aborts the RPC."""
    a, b = topo.host("a"), topo.host("b")
    with HomaStack(topo, "b") as server_stack:
        echo = Echo(server_stack.server(PORT))
        raw = forger(a)
        with raw:
            addr = client_of(a, b, 50002)
            for frame in wire.data_frames(**addr, rpc_id=3000, message=payload(100_000))[:5]:
                raw.send(frame)
            time.sleep(0.002)
            rpcs = server_stack.maps["rpcs"]
            ((key, value),) = rpcs.items()
            assert value["armed"] == 1
            # a new element, with no timer (a tick would set last_received at once)
            rpcs[key] = {**value, "armed": 0, "last_received": 0, "silent": 0}
            time.sleep(0.03)
            assert rpcs[key]["last_received"] == 0 and rpcs[key]["armed"] == 0
            resends = [p for p in replies(raw, b.ip, wait=1.0) if p.kind == wire.RESEND]
            assert resends and resends[0].rpc_id == 3000
            assert resends[0].offset == 5 * wire.PAYLOAD
        settle(server_stack, timeout=3)       # the timer runs on: unanswered, it aborts
        echo.stop()
        assert server_stack.rpcs() == [] and server_stack.counters()["aborted"] == 1


def test_a_full_request_queue_stops_nothing(topo: Topology) -> None:
    """The library's requests for gen (RESEND, REPAIR, ARM) go through `ctrl`, 1,024
    entries: when it is full a request is not queued (the timer or the next look asks
    again) instead of raising in the thread that receives for every call."""
    with HomaStack(topo, "a") as stack:
        key = (2, topo.host("b").ip, 7, 7)
        queued = 0
        while queued < 5_000 and stack._queue_ctrl(key, wire.ARM):
            queued += 1
        assert queued == 1_024
        assert not stack._queue_ctrl(key, wire.RESEND, 0, wire.PAYLOAD)
        assert stack.error is None

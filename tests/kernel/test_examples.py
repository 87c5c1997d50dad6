"""Every example transport passes the kernel verifier and agrees with the interpreter.

Each example has a scenario: a sequence of frames (and timer firings) run in
the kernel with BPF_PROG_TEST_RUN and in the reference interpreter from the
same map contents. After each step the two must agree on everything
observable (action, packet bytes, every map, redirect, ring-buffer records,
timers started), and the scenario's own expectations must hold, so each test
also shows the example does what its docstring says.
"""
from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from etran.differential.harness import KernelHarness, compare
from etran.interp.interpreter import Interpreter
from etran.interp.state import MapStore, RunResult, frame_input
from etran.ir import codec
from etran.pipeline import compile_file
from etran.testing.packets import eth, ipv4, tcp_frame, udp_frame

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
pytestmark = pytest.mark.kernel


@dataclass
class Step:
    hook: str
    packet: bytes
    expect: Callable[[RunResult, Ctx], None] | None = None
    now_ns: int = 0
    timer_key: tuple[str, Any] | None = None   # (map, key): fire this @timer handler for it


@dataclass
class Scenario:
    example: str
    maps: dict[str, list[tuple[Any, Any]]] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)


@dataclass
class Ctx:
    program: Any

    def value(self, result: RunResult, map_name: str, key: Any) -> dict[str, Any] | None:
        m = self.program.map(map_name)
        raw = result.maps[map_name].entries.get(codec.encode(m.key, key))
        if raw is None:
            return None
        if isinstance(raw, list):
            return codec.decode(m.value, raw[0])
        return codec.decode(m.value, raw)


def flow_key(local: str, remote: str, lport: int, rport: int) -> dict[str, Any]:
    return {"local_ip": local, "remote_ip": remote, "local_port": lport, "remote_port": rport}


# ---------------------------------------------------------------- scenarios
A, B = "10.0.0.1", "10.0.0.2"


def dctcp() -> Scenario:
    key = flow_key(A, B, 5000, 80)
    conn = {"snd_una": 1000, "snd_nxt": 30000, "cwnd": 14480, "ssthresh": 65535,
            "window_end": 20000}

    def ack(n: int, ce: bool = False) -> bytes:
        return tcp_frame(src=B, dst=A, sport=80, dport=5000, ack=n, flags=0x10,
                         tos=3 if ce else 0)

    def cwnd_grew(r: RunResult, c: Ctx) -> None:
        v = c.value(r, "conns", key)
        assert v is not None and v["snd_una"] == 2448 and v["cwnd"] == 14480 + 1448

    def ce_counted(r: RunResult, c: Ctx) -> None:
        v = c.value(r, "conns", key)
        assert v is not None and v["ce_bytes"] == 1448 and v["acked_bytes"] == 2896

    def window_cut(r: RunResult, c: Ctx) -> None:
        v = c.value(r, "conns", key)
        assert v is not None and v["alpha"] > 0 and v["acked_bytes"] == 0
        assert v["window_end"] == 30000

    def dupack(r: RunResult, c: Ctx) -> None:
        v = c.value(r, "conns", key)
        assert v is not None and v["dupacks"] == 1

    def timed_out(r: RunResult, c: Ctx) -> None:
        v = c.value(r, "conns", key)
        assert v is not None and v["cwnd"] == 1448 and v["timeouts"] == 1
        assert v["snd_nxt"] == v["snd_una"] == 22000

    def stamped(r: RunResult, c: Ctx) -> None:
        seq = struct.unpack_from("!I", r.packet, 14 + 20 + 4)[0]
        assert seq == 30000 and r.action == 3
        assert [t.field for t in r.timers] == ["rto"]

    return Scenario("dctcp", {"conns": [(key, conn)]}, [
        Step("rx", ack(2448), cwnd_grew),
        Step("rx", ack(3896, ce=True), ce_counted),
        Step("rx", ack(22000, ce=True), window_cut),
        Step("rx", ack(22000), dupack),
        Step("rx", udp_frame(), lambda r, c: _action(r, 2)),
        Step("tx", tcp_frame(b"x" * 100, src=A, dst=B, sport=5000, dport=80), stamped),
        Step("rto_expired", bytes(64), timed_out, timer_key=("conns", key)),
    ])


def _action(r: RunResult, a: int) -> None:
    assert r.action == a, f"action {r.action}, expected {a}"


def homa() -> Scenario:
    def data(rpc: int, offset: int, length: int, msg_len: int) -> bytes:
        homa_hdr = struct.pack("!HHBBHQ", 4000, 5000, 0x10, 0, 0, rpc)
        body = struct.pack("!III", msg_len, offset, length)
        return eth(ipv4(homa_hdr + body + bytes(64), src=B, dst=A, proto=0xFD))

    def granted(r: RunResult, c: Ctx) -> None:
        key = {"rpc_id": 7, "peer": B, "local_port": 5000, "peer_port": 4000}
        v = c.value(r, "rpcs", key)
        assert v is not None and v["received"] == 2800 and v["granted"] == 102800
        assert len(r.maps["pending"].queue) == 2     # one GRANT per DATA packet so far

    def grant_frame(offset: int) -> Callable[[RunResult, Ctx], None]:
        def check(r: RunResult, c: Ctx) -> None:
            assert r.action == 3 and len(r.packet) == 14 + 20 + 16 + 8
            assert r.packet[14 + 9] == 0xFD            # IPPROTO_HOMA
            assert struct.unpack_from("!I", r.packet, 50)[0] == offset
        return check

    return Scenario("homa_grants", {"totals": [(0, {})]}, [
        Step("rx", data(7, 0, 1400, 1_000_000), None),
        Step("rx", data(7, 1400, 1400, 1_000_000), granted),
        Step("rx", data(9, 0, 1400, 3000), lambda r, c: _action(r, 2)),
        Step("send_grants", bytes(128), grant_frame(101400)),
        Step("send_grants", bytes(128), grant_frame(102800)),
        Step("send_grants", bytes(128), lambda r, c: _action(r, 1)),
        Step("rx", udp_frame(), lambda r, c: _action(r, 2)),
    ])


def rate_limiter() -> Scenario:
    key = {"src": A, "dport": 6000}
    frame = udp_frame(bytes(100))

    def charged(r: RunResult, c: Ctx) -> None:
        v = c.value(r, "buckets", key)
        assert r.action == 2 and v is not None and v["tokens"] == 300 - len(frame)
        assert [t.field for t in r.timers] == ["refill_timer"]

    def refilled(r: RunResult, c: Ctx) -> None:
        v = c.value(r, "buckets", key)
        assert v is not None and v["tokens"] == 300 - 2 * len(frame) + 500
        assert [t.field for t in r.timers] == ["refill_timer"]      # it re-arms itself

    return Scenario("rate_limiter", {"buckets": [(key, {"tokens": 300, "burst": 3000,
                                                        "rate_bytes": 500})]}, [
        Step("police", frame, charged),
        Step("police", frame, lambda r, c: _action(r, 2)),
        Step("police", frame, lambda r, c: _action(r, 1)),
        Step("police", udp_frame(sport=1, dport=7), lambda r, c: _action(r, 2)),
        Step("refill", bytes(64), refilled, timer_key=("buckets", key)),
        Step("police", frame, lambda r, c: _action(r, 2)),
    ])


def spinlock_stats() -> Scenario:
    def stats(r: RunResult, c: Ctx) -> None:
        v = c.value(r, "ports", 6000)
        assert v is not None and v["count"] == 2 and v["smallest"] == 42 + 10
        assert v["largest"] == 42 + 200 and v["last_ns"] == 777

    return Scenario("spinlock_stats", {"ports": [(6000, {})]}, [
        Step("measure", udp_frame(bytes(200)), None, now_ns=5),
        Step("measure", udp_frame(bytes(10)), stats, now_ns=777),
    ])


def ringbuf_events() -> Scenario:
    def logged(r: RunResult, c: Ctx) -> None:
        (rec,) = r.ringbuf["events"]
        ev = codec.decode(c.program.map("events").value, rec)
        assert ev["sport"] == 40000 and ev["dport"] == 443 and ev["window"] == 29200

    return Scenario("ringbuf_events", {}, [
        Step("syn_log", tcp_frame(sport=40000, dport=443, flags=0x02, window=29200), logged),
        Step("syn_log", tcp_frame(sport=40000, dport=443, flags=0x12), None),
    ])


def tcp_options() -> Scenario:
    opts = (bytes([2, 4]) + struct.pack("!H", 1460) + bytes([1, 3, 3, 7, 4, 2])
            + bytes([8, 10]) + struct.pack("!II", 123456, 654321) + bytes([0, 0]))
    key = {"src": A, "dst": B, "sport": 5000, "dport": 80}

    def parsed(r: RunResult, c: Ctx) -> None:
        v = c.value(r, "flows", key)
        assert v is not None and v["mss"] == 1460 and v["wscale"] == 7 and v["sack_ok"]
        assert v["ts_value"] == 123456 and v["ts_echo"] == 654321 and v["options_seen"] == 4

    bad = bytes([2, 9, 0, 0])
    return Scenario("tcp_options", {}, [
        Step("parse_options", tcp_frame(flags=0x02, options=opts), parsed),
        Step("parse_options", tcp_frame(flags=0x02, options=bad, sport=5001),
             lambda r, c: _malformed(r, c)),
        Step("parse_options", tcp_frame(), None),
    ])


def _malformed(r: RunResult, c: Ctx) -> None:
    v = c.value(r, "flows", {"src": A, "dst": B, "sport": 5001, "dport": 80})
    assert v is not None and v["malformed"]


def udp_echo() -> Scenario:
    def echoed(r: RunResult, c: Ctx) -> None:
        assert r.action == 3
        assert r.packet[0:6] == bytes.fromhex("020000000001")
        assert r.packet[26:30] == bytes([10, 0, 0, 2]) and r.packet[30:34] == bytes([10, 0, 0, 1])
        from etran.testing.packets import checksum
        assert checksum(r.packet[14:34]) == 0        # a valid IPv4 header checksum
    return Scenario("udp_echo", {}, [
        Step("echo", udp_frame(b"ping", dport=7), echoed),
        Step("echo", udp_frame(b"ping", dport=8), lambda r, c: _action(r, 2)),
    ])


def port_firewall() -> Scenario:
    blocked = [0] * 1024
    blocked[443 >> 6] |= 1 << (443 & 63)
    blocked[53 >> 6] |= 1 << (53 & 63)
    return Scenario("port_firewall", {"config": [(0, {"enabled": True, "blocked": blocked})]}, [
        Step("firewall", tcp_frame(dport=443), lambda r, c: _action(r, 1)),
        Step("firewall", tcp_frame(dport=80), lambda r, c: _action(r, 2)),
        Step("firewall", udp_frame(dport=53), lambda r, c: _action(r, 1)),
        Step("firewall", udp_frame(dport=54), lambda r, c: _action(r, 2)),
    ])


def flow_stats() -> Scenario:
    key = {"src": A, "dst": B, "sport": 5000, "dport": 6000, "protocol": 17}

    def counted(r: RunResult, c: Ctx) -> None:
        v = c.value(r, "flows", key)
        assert v is not None and v["packets"] == 2 and v["first_ns"] == 10 and v["last_ns"] == 20

    return Scenario("flow_stats", {}, [
        Step("account", udp_frame(bytes(10)), None, now_ns=10),
        Step("account", udp_frame(bytes(30)), counted, now_ns=20),
        Step("account", eth(bytes(46), proto=0x86DD), None),
    ])


def vlan_push() -> Scenario:
    frame = udp_frame(b"payload")

    def tagged(r: RunResult, c: Ctx) -> None:
        assert len(r.packet) == len(frame) + 4
        assert r.packet[:12] == frame[:12] and r.packet[12:14] == b"\x81\x00"
        assert struct.unpack_from("!H", r.packet, 14)[0] == (5 << 13) | 100
        assert r.packet[16:] == frame[12:]

    return Scenario("vlan_push", {"vlans": [(0, {"vid": 100, "priority": 5})]}, [
        Step("tag", frame, tagged),
    ])


def packet_trimmer() -> Scenario:
    frame = udp_frame(bytes(500), dport=4791)

    def trimmed(r: RunResult, c: Ctx) -> None:
        assert len(r.packet) == 14 + 20 + 8 and r.packet[15] & 0x04
        from etran.testing.packets import checksum
        assert checksum(r.packet[14:34]) == 0

    steps = [Step("trim", frame, lambda r, c: _unchanged(r, frame), now_ns=1_000_000 + i)
             for i in range(32)]
    steps.append(Step("trim", frame, trimmed, now_ns=1_000_050))
    return Scenario("packet_trimmer", {}, steps)


def _unchanged(r: RunResult, frame: bytes) -> None:
    assert r.packet == frame and r.action == 2


def seq_stamper() -> Scenario:
    def shim(flow: int, seq: int) -> bytes:
        return udp_frame(struct.pack("!II", flow, seq) + b"data", dport=9000)

    def numbered(r: RunResult, c: Ctx) -> None:
        assert struct.unpack_from("!I", r.packet, 42 + 4)[0] == 1

    def gap(r: RunResult, c: Ctx) -> None:
        v = c.value(r, "rx_flows", 7)
        assert v is not None and v["gaps"] == 2 and v["expected"] == 4 and v["in_order"] == 1

    return Scenario("seq_stamper", {}, [
        Step("stamp", shim(7, 0), None),
        Step("stamp", shim(7, 0), numbered),
        Step("receive", shim(7, 0), None),
        Step("receive", shim(7, 3), gap),
        Step("receive", shim(7, 2), None),
    ])


RD_PORT = 7100


def datagram(kind: int, flow: int, seq: int = 0, ack: int = 0, epoch: int = 0) -> bytes:
    """A reliable_datagram header: kind, flags, epoch, flow, seq, ack."""
    return struct.pack("!BBHIII", kind, 0, epoch, flow, seq, ack)


def reliable_datagram() -> Scenario:
    DATA, ACK, TIMEOUT = 1, 2, 3
    tx = {"peer": B, "flow": 5}             # A's flow 5 to B
    rx = {"peer": A, "flow": 9}             # flow 9 from A, as B sees it

    def data(seq: int = 0, epoch: int = 0, flow: int = 5) -> bytes:
        return udp_frame(datagram(DATA, flow, seq, epoch=epoch) + b"payload", sport=5000,
                         dport=RD_PORT)

    def ack(n: int) -> bytes:
        return udp_frame(datagram(ACK, 5, ack=n), src=B, dst=A, sport=RD_PORT, dport=RD_PORT)

    def tick() -> bytes:
        return udp_frame(datagram(TIMEOUT, 0), src=A, dst=A, sport=RD_PORT, dport=RD_PORT)

    def sender(**want: Any) -> Callable[[RunResult, Ctx], None]:
        def check(r: RunResult, c: Ctx) -> None:
            v = c.value(r, "tx_flows", tx)
            assert v is not None and {k: v[k] for k in want} == want, v
        return check

    def receiver(**want: Any) -> Callable[[RunResult, Ctx], None]:
        def check(r: RunResult, c: Ctx) -> None:
            v = c.value(r, "rx_flows", rx)
            assert v is not None and {k: v[k] for k in want} == want, v
        return check

    def both(*checks: Callable[[RunResult, Ctx], None]) -> Callable[[RunResult, Ctx], None]:
        def check(r: RunResult, c: Ctx) -> None:
            for one in checks:
                one(r, c)
        return check

    def stamped(seq: int, timer: bool) -> Callable[[RunResult, Ctx], None]:
        def check(r: RunResult, c: Ctx) -> None:
            assert r.action == 3 and struct.unpack_from("!I", r.packet, 42 + 8)[0] == seq
            assert r.packet[40:42] == b"\0\0"                   # UDP checksum: none
            assert [t.field for t in r.timers] == (["rto"] if timer else [])
        return check

    def queued(name: str, n: int) -> Callable[[RunResult, Ctx], None]:
        def check(r: RunResult, c: Ctx) -> None:
            assert len(r.maps[name].queue) == n
        return check

    def rearmed(yes: bool) -> Callable[[RunResult, Ctx], None]:
        def check(r: RunResult, c: Ctx) -> None:
            assert [t.field for t in r.timers] == (["rto"] if yes else [])
        return check

    def woken(r: RunResult, c: Ctx) -> None:
        assert c.value(r, "wake", 0) == {"asked": 1}

    def notice(r: RunResult, c: Ctx) -> None:
        # no socket in a test run: the redirect falls back to XDP_DROP
        assert r.redirect == ("app_sockets", 0) and r.action == 1
        kind, _, epoch, flow, seq, _ = struct.unpack_from("!BBHIII", r.packet, 42)
        assert (kind, epoch, flow, seq) == (TIMEOUT, 1, 5, 1)
        assert r.packet[30:34] == bytes([10, 0, 0, 2])      # ip.dst: the flow's peer

    def delivered(r: RunResult, c: Ctx) -> None:
        assert r.redirect == ("app_sockets", 0)

    def dropped(r: RunResult, c: Ctx) -> None:
        assert r.action == 1 and r.redirect is None

    def ack_frame(r: RunResult, c: Ctx) -> None:
        from etran.testing.packets import checksum
        p = r.packet
        assert r.action == 3 and len(p) == 14 + 20 + 8 + 16
        assert p[0:6] == bytes.fromhex("020000000001") and p[6:12] == bytes.fromhex("020000000002")
        assert p[26:30] == bytes([10, 0, 0, 2]) and p[30:34] == bytes([10, 0, 0, 1])
        assert checksum(p[14:34]) == 0                      # a valid IPv4 header checksum
        assert struct.unpack_from("!HHHH", p, 34) == (RD_PORT, 5000, 8 + 16, 0)
        assert struct.unpack_from("!BBHIII", p, 42) == (ACK, 0, 0, 9, 0, 1)

    return Scenario("reliable_datagram", {}, [
        # sender: stamping, the timer armed once, stale epochs dropped
        Step("send", data(), both(stamped(0, True), sender(snd_nxt=1, snd_max=1, sent=1,
                                                            rto_armed=True))),
        Step("send", data(), stamped(1, False)),
        Step("send", data(), both(stamped(2, False), sender(snd_nxt=3, snd_max=3))),
        Step("send", data(epoch=1), both(dropped, sender(stale=1, snd_nxt=3))),
        # cumulative ACKs, never past what was sent
        Step("receive", ack(1), both(dropped, sender(snd_una=1, acks=1))),
        Step("receive", ack(9), sender(snd_una=1, acks=2)),
        # the timer: progress since it was armed, then none: a timeout, queued once
        Step("rto_expired", bytes(64), both(rearmed(True), sender(timeouts=0, una_seen=1)),
             timer_key=("tx_flows", tx)),
        Step("rto_expired", bytes(64), both(rearmed(True), woken, queued("timed_out", 1),
                                            sender(timeouts=1, retransmit=True)),
             timer_key=("tx_flows", tx)),
        Step("rto_expired", bytes(64), both(queued("timed_out", 1), sender(timeouts=1)),
             timer_key=("tx_flows", tx)),
        # the runtime's TIMEOUT frame: go back N, and a notice for the application
        Step("send", tick(), both(notice, queued("timed_out", 0), woken,
                                  sender(snd_nxt=1, snd_una=1, epoch=1, go_backs=1,
                                         retransmit=False))),
        Step("send", tick(), both(dropped, sender(go_backs=1))),    # nothing more to do
        Step("send", data(epoch=1), both(stamped(1, False), sender(snd_nxt=2, snd_max=3))),
        Step("receive", ack(3), sender(snd_una=3)),                 # in flight before the go-back
        Step("rto_expired", bytes(64), both(rearmed(False), sender(rto_armed=False)),
             timer_key=("tx_flows", tx)),
        # receiver: in order, gap, duplicate; one ACK due per flow
        Step("receive", data(0, flow=9), both(delivered, queued("acks_due", 1),
                                              receiver(expected=1, delivered=1, ack_queued=True,
                                                       peer_mac={"octets": [2, 0, 0, 0, 0, 1]},
                                                       peer_port=5000))),
        Step("receive", data(2, flow=9), both(dropped, queued("acks_due", 1),
                                              receiver(expected=1, out_of_order=1))),
        Step("receive", data(0, flow=9), both(dropped, receiver(duplicates=1))),
        Step("ack", bytes(128), both(ack_frame, queued("acks_due", 0),
                                     receiver(ack_queued=False, acks_sent=1))),
        Step("ack", bytes(128), lambda r, c: _action(r, 1)),        # no ACK due
        Step("receive", data(1, flow=9), both(delivered, receiver(expected=2, delivered=2))),
        Step("receive", udp_frame(b"other"), lambda r, c: _action(r, 2)),
    ])


def impair_drop() -> Scenario:
    rule = {"port": RD_PORT, "key_offset": 8, "kind_offset": 0, "kind": 1, "match_kind": True}

    def frame(kind: int, seq: int, dport: int = RD_PORT) -> bytes:
        return udp_frame(datagram(kind, 1, seq), dport=dport)

    def counts(seen: int, dropped: int, victim: dict[str, int] | None = None
               ) -> Callable[[RunResult, Ctx], None]:
        def check(r: RunResult, c: Ctx) -> None:
            assert c.value(r, "totals", 0) == {"seen": seen, "dropped": dropped}
            if victim is not None:
                assert c.value(r, "victims", 10) == victim
        return check

    def act(a: int, check: Callable[[RunResult, Ctx], None]) -> Callable[[RunResult, Ctx], None]:
        def both(r: RunResult, c: Ctx) -> None:
            _action(r, a)
            check(r, c)
        return both

    return Scenario("impair_drop", {"rule": [(0, rule)],
                                    "victims": [(10, {"remaining": 1}), (12, {"remaining": 2})]}, [
        Step("impair", frame(1, 10), act(1, counts(1, 1, {"remaining": 0, "dropped": 1}))),
        Step("impair", frame(1, 10), act(2, counts(2, 1, {"remaining": 0, "dropped": 1}))),
        Step("impair", frame(1, 11), act(2, counts(3, 1))),
        Step("impair", frame(1, 12), act(1, counts(4, 2))),
        Step("impair", frame(1, 12), act(1, counts(5, 3))),
        Step("impair", frame(1, 12), act(2, counts(6, 3))),
        Step("impair", frame(2, 10), act(2, counts(6, 3))),         # not DATA: not considered
        Step("impair", frame(1, 10, dport=7101), act(2, counts(6, 3))),
        Step("impair", udp_frame(b"\x01\0\0\0", dport=RD_PORT), act(2, counts(6, 3))),  # short
    ])


SCENARIOS = [dctcp(), homa(), rate_limiter(), spinlock_stats(), ringbuf_events(),
             tcp_options(), udp_echo(), port_firewall(), flow_stats(), vlan_push(),
             packet_trimmer(), seq_stamper(), reliable_datagram(), impair_drop()]


def test_every_example_has_a_scenario() -> None:
    names = {p.stem for p in EXAMPLES.glob("*.py")}
    assert len(names) >= 12
    assert names == {s.example for s in SCENARIOS}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.example for s in SCENARIOS])
def test_example_agrees_with_the_interpreter(kernel: None, scenario: Scenario) -> None:
    obj = compile_file(EXAMPLES / f"{scenario.example}.py", observe=True)
    ctx = Ctx(obj.program)
    interp = Interpreter(obj.program)
    with KernelHarness(obj) as runner:
        store = MapStore(obj.program, runner.ncpu)
        for name, entries in scenario.maps.items():
            for k, v in entries:
                store.set(name, k, v)
        for i, step in enumerate(scenario.steps):
            inp = frame_input(step.packet, maps=store, now_ns=step.now_ns)
            if step.timer_key is not None:
                m = obj.program.map(step.timer_key[0])
                key = codec.encode(m.key, step.timer_key[1])
                k = runner.run_timer(step.hook, key, inp)
                mine = interp.run_timer(step.hook, key, inp)
            else:
                k = runner.run(step.hook, inp)
                mine = interp.run(step.hook, inp)
            diffs = compare(k, mine)
            assert not diffs, f"step {i} ({step.hook}): " + "; ".join(map(str, diffs))
            if step.expect is not None:
                step.expect(mine, ctx)
            store = mine.maps


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.stem)
def test_example_passes_the_verifier_unobserved(kernel: None, path: Path) -> None:
    """The build users deploy (no observation probes) loads too, within the estimate."""
    from etran.runtime.loader import load_object
    obj = compile_file(path)
    with load_object(obj.elf) as loaded:
        for name, prog in loaded.programs.items():
            est = obj.program.budgets[name]
            assert prog.stats.processed_insns <= est.processed, (
                f"{name}: the verifier processed {prog.stats.processed_insns} instructions, "
                f"above the checker's estimate {est.processed}")
            assert max(prog.stats.stack_depth, default=0) <= est.stack, (
                f"{name}: the kernel's stack depth {prog.stats.stack_depth} is above the "
                f"checker's estimate {est.stack}")

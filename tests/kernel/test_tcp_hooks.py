"""The TCP data path's hooks, kernel against interpreter, on segments that reach them deep:
a connection installed in `conns`, its port owned, and segments with valid checksums whose
sequence and acknowledgement numbers fall around the connection's (in order, duplicate,
ahead, wrapped past 2^32), with every flag combination, payloads of any size, and damaged
bytes. Random frames alone almost never find a connection, so they would test little."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etran.differential.harness import KernelHarness, compare, run_both
from etran.interp.interpreter import Interpreter
from etran.interp.state import MapStore, frame_input
from etran.ir import codec
from etran.pipeline import compile_file
from etran.tcp import segments as sg
from etran.tcp.stack import TRANSPORT

pytestmark = pytest.mark.kernel

A, B = "10.111.0.1", "10.111.0.2"
MAC_A, MAC_B = bytes.fromhex("02e700000001"), bytes.fromhex("02e700000002")
LOCAL, PEER = 40000, 5001
SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

@pytest.fixture(scope="module")
def runner(kernel: None) -> Any:
    compiled = compile_file(TRANSPORT, observe=True)
    with KernelHarness(compiled) as r:
        yield r


def maps(runner: Any, snd_una: int, snd_nxt: int, wnd: int, rcv_nxt: int,
         state: int, queued: bool, cc: dict[str, Any] | None = None) -> MapStore:
    store = MapStore(runner.program, runner.ncpu)
    store.set("ports", LOCAL, {"owned": 1})
    store.set("delayed_acks", {"peer_ip": sg.ip_int(B), "peer_port": PEER,
                               "local_port": LOCAL}, {})
    store.set("conns", {"peer_ip": sg.ip_int(B), "peer_port": PEER, "local_port": LOCAL}, {
        "state": state, "snd_una": snd_una, "snd_nxt": snd_nxt, "snd_wnd": wnd,
        "rcv_nxt": rcv_nxt, "ack_queued": queued, "local_ip": sg.ip_int(A),
        "local_port": LOCAL, "peer_port": PEER, "peer_ip": sg.ip_int(B),
        "local_mac": {"octets": list(MAC_A)}, "peer_mac": {"octets": list(MAC_B)},
        "mss": 1460, "cwnd": 10, "ssthresh": 0xFFFF, "alpha": 1024, "next_seq": snd_nxt,
        "cwr_end": snd_nxt, **(cc or {})})
    return store


u32 = st.integers(0, 0xFFFFFFFF)
# congestion control and window-scaling state: ECN on or off, CE echo pending, windows,
# shifts and alpha at their edges
cc_state = st.fixed_dictionaries({
    "ecn_ok": st.booleans(), "ce_state": st.booleans(), "cwr_pending": st.booleans(),
    "mss": st.sampled_from([0, 1, 536, 1460]), "cwnd": st.sampled_from([0, 1, 2, 10, 65535]),
    "ssthresh": st.sampled_from([2, 10, 0xFFFF]), "alpha": st.sampled_from([0, 15, 16, 1024]),
    "cwnd_cnt": st.integers(0, 20), "delivered": u32, "delivered_ce": u32,
    "next_seq": u32, "cwr_end": u32,
    # window scaling: the shifts past RFC 7323's 14 too, the buffer at its edges
    "snd_wscale": st.sampled_from([0, 3, 7, 14, 15, 0xFFFFFFFF]),
    "rcv_wscale": st.sampled_from([0, 3, 14, 15, 0xFFFFFFFF]),
    "rcv_buf": st.sampled_from([0, 1, 65535, 65536, 256 << 10, 0xFFFFFFFF]),
    "ts_ok": st.booleans(), "ts_recent": u32, "sack_ok": st.booleans(), "ooo_recent": u32,
    # in-order segments since our last ACK: below, at and past the delayed ACK's two
    "rx_unacked": st.sampled_from([0, 1, 2, 3, 0xFFFFFFFF]),
    "last_ack": u32, "last_wnd": st.sampled_from([0, 65535, 1 << 20]),
    "rto_armed": st.booleans()})
# a segment's options: none, the timestamps as Linux and our egress lay them out, or the
# same bytes a little wrong (another kind, a short length, one NOP)
options = st.one_of(st.just(b""), st.builds(sg.ts_option, u32, u32),
                    st.sampled_from([bytes.fromhex("0101080b") + bytes(8),
                                     bytes.fromhex("01010808") + bytes(8),
                                     bytes.fromhex("01080a") + bytes(9)]))
near = st.one_of(st.integers(-3000, 3000), st.sampled_from([0, 1, -1, 65535, 1 << 31]))
flags = st.integers(0, 0x3F)
payload = st.one_of(st.binary(max_size=40), st.integers(0, 1460).map(lambda n: bytes(n % 251
                                                                                   for _ in range(n))))


@SETTINGS
@given(base=u32, una_gap=st.integers(0, 70000), wnd=st.integers(0, 70000), rcv=u32,
       dseq=near, dack=near, fl=st.integers(0, 0xFF), data=payload,
       damage=st.integers(-1, 80), state=st.sampled_from([1, 2]), queued=st.booleans(),
       cc=cc_state, tos=st.integers(0, 3), opts=options,
       held=st.lists(st.tuples(st.integers(0, 6000), st.integers(0, 3000)), min_size=4,
                     max_size=4),
       held_count=st.sampled_from([0, 1, 2, 3, 4, 5, 0xFFFFFFFF]),
       ring=st.tuples(st.sampled_from([0, 1, 55, 56, 57, 2**64 - 1]),
                      st.sampled_from([0, 1, 2**64 - 1]), st.sampled_from([0, 1, 56])))
def test_ingress_agrees(runner: Any, base: int, una_gap: int, wnd: int, rcv: int, dseq: int,
                        dack: int, fl: int, data: bytes, damage: int, state: int,
                        queued: bool, cc: dict[str, Any], tos: int, opts: bytes,
                        held: list[tuple[int, int]], held_count: int,
                        ring: tuple[int, int, int]) -> None:
    """A segment against a connection in any state, with out-of-order intervals held a
    little ahead of rcv_nxt (and a count of them past what the arrays hold), and the
    application's ring at, under and over its limit (counts wrapping too)."""
    cc = {**cc, "ooo_count": held_count,
          "ooo_starts": [(rcv + ahead) & 0xFFFFFFFF for ahead, _ in held],
          "ooo_ends": [(rcv + ahead + size) & 0xFFFFFFFF for ahead, size in held]}
    snd_nxt = (base + una_gap) & 0xFFFFFFFF
    frame = bytearray(sg.build(src_mac=MAC_B, dst_mac=MAC_A, src=B, dst=A, sport=PEER,
                               dport=LOCAL, seq=(rcv + dseq) & 0xFFFFFFFF,
                               ack=(snd_nxt + dack) & 0xFFFFFFFF, flags=fl, payload=data,
                               options=opts))
    frame[15] = tos                        # ECN field (the IPv4 checksum ignores it here:
    frame[24:26] = b"\0\0"                # recomputed below so the segment stays valid)
    frame[24:26] = sg.checksum(bytes(frame[14:34])).to_bytes(2, "big")
    if 0 <= damage < len(frame):
        frame[damage] ^= 0x5A
    store = maps(runner, base, snd_nxt, wnd, rcv, state, queued, cc)
    store.set("handed", 0, {"frames": ring[0]})
    store.set("taken", 0, {"frames": ring[1], "limit": ring[2]})
    _k, _i, diffs = run_both(runner, "tcp_rx", frame_input(bytes(frame), maps=store))
    assert not diffs, diffs


@pytest.mark.parametrize("armed", [False, True])
def test_a_duplicate_ack_starts_a_retransmission_timer_that_is_not_running(
        runner: Any, armed: bool) -> None:
    """Data outstanding and no retransmission timer (the kernel could not start it when
    the data left): a duplicate ACK starts it, as a new ACK would; with one running, a
    duplicate ACK leaves it alone."""
    una, rcv = 1_000, 7_000
    store = maps(runner, una, una + 4_000, 65535, rcv, 1, False, {"rto_armed": armed})
    frame = sg.build(src_mac=MAC_B, dst_mac=MAC_A, src=B, dst=A, sport=PEER, dport=LOCAL,
                     seq=rcv, ack=una, flags=sg.ACK)
    k, _i, diffs = run_both(runner, "tcp_rx", frame_input(frame, maps=store))
    assert not diffs, diffs
    conn = _conn(runner, k.maps)
    assert conn["dup_acks"] == 1 and conn["rto_armed"]
    assert [(t.map, t.field) for t in k.timers] == ([] if armed else [("conns", "rto")])


def test_data_that_would_overrun_the_ring_is_refused(runner: Any) -> None:
    """In-order data is taken (and counted in `handed`) while fewer frames wait on the
    application's ring than its limit, and refused with a duplicate ACK (rcv_nxt unmoved,
    nothing handed over) once as many do; an out-of-order segment likewise."""
    rcv, una = 5_000_000, 9_000
    handed = runner.program.map("handed").value

    def segment(store: MapStore, seq: int, frames: int) -> Any:
        store.set("handed", 0, {"frames": frames})
        store.set("taken", 0, {"frames": 100, "limit": 56})
        frame = sg.build(src_mac=MAC_B, dst_mac=MAC_A, src=B, dst=A, sport=PEER, dport=LOCAL,
                         seq=seq, ack=una, flags=sg.ACK | sg.PSH, payload=b"d" * 100)
        k, _i, diffs = run_both(runner, "tcp_rx", frame_input(frame, maps=store))
        assert not diffs, diffs
        return k, codec.decode(handed, k.maps["handed"].entries[bytes(4)])["frames"]
    k, count = segment(maps(runner, una, una, 65535, rcv, 1, False), rcv, 155)
    assert k.redirect == ("sockets", 0) and count == 156
    assert _conn(runner, k.maps)["rcv_nxt"] == rcv + 100
    k, count = segment(maps(runner, una, una, 65535, rcv, 1, False), rcv, 156)
    assert k.redirect is None and k.action == 1 and count == 156
    conn = _conn(runner, k.maps)
    assert conn["rcv_nxt"] == rcv and conn["dup_acks_sent"] == 1
    k, count = segment(maps(runner, una, una, 65535, rcv, 1, False), rcv + 1000, 156)
    assert k.redirect is None and _conn(runner, k.maps)["ooo_count"] == 0


@SETTINGS
@given(base=u32, una_gap=st.integers(0, 70000), wnd=st.integers(0, 70000), rcv=u32,
       fl=flags, data=payload, other_port=st.booleans(), cc=cc_state, at_nxt=st.booleans(),
       opts=options)
def test_egress_agrees(runner: Any, base: int, una_gap: int, wnd: int, rcv: int, fl: int,
                       data: bytes, other_port: bool, cc: dict[str, Any], at_nxt: bool,
                       opts: bytes) -> None:
    snd_nxt = (base + una_gap) & 0xFFFFFFFF
    frame = sg.build(src_mac=MAC_A, dst_mac=MAC_B, src=A, dst=B, sport=LOCAL,
                     dport=PEER + other_port, flags=fl, payload=data,
                     seq=snd_nxt if at_nxt else base, options=opts)
    store = maps(runner, base, snd_nxt, wnd, rcv, 1, False, cc)
    _k, _i, diffs = run_both(runner, "tcp_tx", frame_input(frame, maps=store))
    assert not diffs, diffs


@SETTINGS
@given(base=u32, rcv=u32, queued=st.booleans(), size=st.integers(14, 200), dup=st.booleans(),
       repeat=st.booleans(), update=st.booleans(), state=st.sampled_from([1, 2]),
       ts=st.one_of(st.none(), u32), sack=st.booleans(),
       held=st.lists(st.tuples(st.integers(1, 60000), st.integers(1, 3000)), min_size=4,
                     max_size=4),
       held_count=st.sampled_from([0, 1, 2, 3, 4, 4, 5, 0xFFFFFFFF]),
       recent=st.integers(-1, 4))
def test_ack_generation_agrees(runner: Any, base: int, rcv: int, queued: bool, size: int,
                               dup: bool, repeat: bool, update: bool, state: int,
                               ts: int | None, sack: bool, held: list[tuple[int, int]],
                               held_count: int, recent: int) -> None:
    """An ACK per request; one that would repeat the last ACK exactly is skipped (the pump
    is asked to come back) unless it was asked for as a duplicate. So is one that only
    updates the window once the peer's FIN is in (state 2): the peer, closed, would answer
    it with a RST. With timestamps on, the ACK carries them, echoing the peer's latest.
    With SACK on and intervals held, it carries them as SACK blocks (three at most beside
    the timestamps, four without), the one holding the latest out-of-order segment
    first (`recent`: its index, or -1 for a sequence number in none of them)."""
    starts = [(rcv + ahead) & 0xFFFFFFFF for ahead, _ in held]
    ends = [(rcv + ahead + length) & 0xFFFFFFFF for ahead, length in held]
    latest = (rcv + 70000) & 0xFFFFFFFF if recent < 0 else starts[min(recent, 3)]
    cc: dict[str, Any] = {"sack_ok": sack, "ooo_count": held_count, "ooo_starts": starts,
                          "ooo_ends": ends, "ooo_recent": latest}
    if ts is not None:
        cc.update(ts_ok=True, ts_recent=ts)
    store = maps(runner, base, base, 1000, rcv, state, queued, cc)
    if repeat:   # the last ACK sent acknowledged this already, with this window or a smaller
        key = {"peer_ip": sg.ip_int(B), "peer_port": PEER, "local_port": LOCAL}
        conn = codec.decode(runner.program.map("conns").value,
                            store.maps["conns"].entries[codec.encode(
                                runner.program.map("conns").key, key, "key")])
        store.set("conns", key, {**conn, "last_ack": rcv, "last_wnd": 1000 if update else 65535})
    if queued:
        acks = runner.program.map("acks").value
        store.push_raw("acks", codec.encode(acks, {"peer_ip": sg.ip_int(B), "peer_port": PEER,
                                                   "local_port": LOCAL, "dup": int(dup)},
                                            "acks value"))
    k, _i, diffs = run_both(runner, "tcp_ack", frame_input(bytes(size), maps=store))
    assert not diffs, diffs
    if queued and (dup or not repeat or (update and state == 1)):
        seg = sg.parse(k.packet)
        assert seg is not None and seg.has(sg.ACK) and (seg.seq, seg.ack) == (base, rcv)
        assert seg.window == 65535
        assert (seg.ts is None) == (ts is None) and (ts is None or seg.ts[1] == ts)
        blocks = min(held_count, 3 if ts is not None else 4) if sack else 0
        sack_len = 4 + 8 * blocks if blocks else 0
        assert len(k.packet) == sg.HEADERS + (0 if ts is None else sg.TS_LEN) + sack_len
        if blocks:
            at = sg.HEADERS + (0 if ts is None else sg.TS_LEN)
            assert k.packet[at:at + 4] == bytes([1, 1, 5, 2 + 8 * blocks])
            got = [struct.unpack_from("!II", k.packet, at + 4 + 8 * i) for i in range(blocks)]
            held_now = list(zip(starts, ends))[:min(held_count, 4)]
            first = max((i for i, (a, b) in enumerate(held_now)
                         if 0 <= ((latest - a) & 0xFFFFFFFF) < 1 << 31
                         and 0 < ((b - latest) & 0xFFFFFFFF) < 1 << 31), default=0)
            order = [first] + [i for i in range(len(held_now)) if i != first]
            assert got == [held_now[i] for i in order][:blocks]
        assert sg.checksum(k.packet[14:34]) == 0
        assert k.action == 3                                   # XDP_TX
    else:
        assert k.action == 1                                   # XDP_DROP: nothing to send


def _conn(runner: Any, store: MapStore) -> dict[str, Any]:
    m = runner.program.map("conns")
    key = codec.encode(m.key, {"peer_ip": sg.ip_int(B), "peer_port": PEER,
                               "local_port": LOCAL}, "key")
    return codec.decode(m.value, store.maps["conns"].entries[key])


def _wake(runner: Any, store: MapStore) -> dict[str, Any]:
    return codec.decode(runner.program.map("wake").value,
                        store.maps["wake"].entries.get(bytes(4), bytes(8)))


def fire_delayed_ack(runner: Any, store: MapStore) -> Any:
    """The connection's delayed-ACK timer firing on `store`, in the kernel and the
    interpreter alike; the kernel's result."""
    key = codec.encode(runner.program.map("delayed_acks").key,
                       {"peer_ip": sg.ip_int(B), "peer_port": PEER, "local_port": LOCAL}, "key")
    inp = frame_input(bytes(64), maps=store)
    k = runner.run_timer("delayed_ack_due", key, inp)
    i = Interpreter(runner.program).run_timer("delayed_ack_due", key, inp)
    assert not compare(k, i)
    return k


@pytest.mark.parametrize("ce", [False, True])
def test_delayed_ack_waits_for_a_second_segment_or_for_our_data(runner: Any, ce: bool) -> None:
    """RFC 5681 4.2 as the data path does it: the first in-order segment queues an ACK and
    arms the connection's delayed-ACK timer instead of asking the pump; the second asks at
    once. A segment of ours leaving meanwhile carries the acknowledgement: the timer then
    finds nothing due, and the queued ACK sends nothing. Without one, the timer asks the
    pump. With CE marks (DCTCP) every segment is acknowledged at once."""
    rcv, una = 1_000_000, 7_000
    store = maps(runner, una, una, 65535, rcv, 1, False, {"ecn_ok": True})

    def segment(seq: int, payload: bytes) -> bytes:
        frame = bytearray(sg.build(src_mac=MAC_B, dst_mac=MAC_A, src=B, dst=A, sport=PEER,
                                   dport=LOCAL, seq=seq, ack=una, flags=sg.ACK | sg.PSH,
                                   payload=payload))
        if ce:                   # CE in the ECN field, the IPv4 checksum made again
            frame[15] = 3
            frame[24:26] = b"\0\0"
            frame[24:26] = sg.checksum(bytes(frame[14:34])).to_bytes(2, "big")
        return bytes(frame)

    k, _i, diffs = run_both(runner, "tcp_rx", frame_input(segment(rcv, b"x" * 64), maps=store))
    assert not diffs, diffs
    store = k.maps
    conn, wake = _conn(runner, store), _wake(runner, store)
    assert conn["rcv_nxt"] == rcv + 64 and conn["ack_queued"] and len(store["acks"].queue) == 1
    if ce:
        assert wake["asked"] == 1 and len(k.ringbuf.get("wake_ring", [])) == 1
        return
    assert conn["rx_unacked"] == 1
    assert wake["asked"] == 0 and not k.ringbuf.get("wake_ring")
    assert [(t.map, t.field, t.delay_ns) for t in k.timers] == \
        [("delayed_acks", "due", 1_000_000)]
    due = fire_delayed_ack(runner, store)
    assert _wake(runner, due.maps)["asked"] == 1 and len(due.ringbuf["wake_ring"]) == 1

    # our response leaves: it carries the ACK, and the queued one is skipped
    reply = sg.build(src_mac=MAC_A, dst_mac=MAC_B, src=A, dst=B, sport=LOCAL, dport=PEER,
                     seq=una, flags=sg.PSH, payload=b"y" * 64)
    k, _i, diffs = run_both(runner, "tcp_tx", frame_input(reply, maps=store))
    assert not diffs, diffs
    assert k.action == 3 and sg.parse(k.packet).ack == rcv + 64
    store = k.maps
    conn = _conn(runner, store)
    assert (conn["last_ack"], conn["rx_unacked"]) == (rcv + 64, 0)
    due = fire_delayed_ack(runner, store)
    assert _wake(runner, due.maps)["asked"] == 0 and not due.ringbuf.get("wake_ring")
    k, _i, diffs = run_both(runner, "tcp_ack", frame_input(bytes(64), maps=store))
    assert not diffs, diffs
    assert k.action == 1 and _conn(runner, k.maps)["acks_sent"] == 0

    # two segments with nothing of ours between: the second asks for the ACK at once
    store = k.maps
    store.set("wake", 0, {"asked": 0})
    for i, seq in enumerate((rcv + 64, rcv + 128)):
        k, _i, diffs = run_both(runner, "tcp_rx", frame_input(segment(seq, b"z" * 64),
                                                              maps=store))
        assert not diffs, diffs
        store = k.maps
        assert len(k.ringbuf.get("wake_ring", [])) == i      # a record only for the second
    k, _i, diffs = run_both(runner, "tcp_ack", frame_input(bytes(64), maps=store))
    assert not diffs, diffs
    seg = sg.parse(k.packet)
    assert k.action == 3 and seg is not None and seg.ack == rcv + 192
    assert _conn(runner, k.maps)["rx_unacked"] == 0

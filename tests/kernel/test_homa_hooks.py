"""The Homa data path's hooks, kernel against interpreter, on packets that reach them deep: an
RPC installed in `rpcs` in each state, a server port owned, candidate slots for the grant
scheduler, and DATA/GRANT/RESEND/BUSY/UNKNOWN/ACK packets whose lengths and offsets fall on
and around the message's packet boundaries, plus damaged bytes. Random frames alone would
almost never name an RPC, so they would test little."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etran.differential.harness import KernelHarness, compare, run_both
from etran.homa import wire
from etran.homa.stack import CUTOFFS, GRANT_WINDOW, MAX_INCOMING, RTT_BYTES, TRANSPORT
from etran.interp.interpreter import Interpreter
from etran.interp.state import MapStore, frame_input
from etran.ir import codec
from etran.pipeline import compile_file

pytestmark = pytest.mark.kernel

A, B = "10.112.0.1", "10.112.0.2"
MAC_A, MAC_B = bytes.fromhex("02e800000001"), bytes.fromhex("02e800000002")
LOCAL, PEER = 4000, 40000
ID = 0x1234_5678_9A00
OVERCOMMIT = 8                   # etran/transports/homa.py
SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def runner(kernel: None) -> Any:
    compiled = compile_file(TRANSPORT, observe=True)
    with KernelHarness(compiled) as r:
        yield r


def key(server: bool) -> dict[str, int]:
    """The RPC as host A names it: A serves it (odd id), or A is its client."""
    return {"id": ID | 1 if server else ID, "peer": wire.ip_int(B), "local_port": LOCAL,
            "peer_port": PEER}


states = st.sampled_from([0, 1, 2, 3, 4, 5])        # 0: no RPC
lengths = st.sampled_from([1, 1399, 1400, 1401, 2800, 60_000, 60_001, 200_000,
                           wire.MAX_MESSAGE, wire.MAX_MESSAGE + 1])
edge_u32 = st.one_of(st.sampled_from([0, 1, 1399, 1400, 60_000, 0xFFFFFFFF]),
                     st.integers(0, 2_000_000))
bitmaps = st.lists(st.sampled_from([0, 1, 0xFFFFFFFFFFFFFFFF, 0x8000000000000001]),
                   min_size=12, max_size=12)


def store_with(runner: Any, state: int, server: bool, length: int, granted: int, sent: int,
               received: int, bitmap: list[int], slots: list[dict[str, int]],
               owned: bool, handed: int = 0, taken: int = 0, armed: int = 1) -> MapStore:
    store = MapStore(runner.program, runner.ncpu)
    store.set("config", 0, {"rtt_bytes": RTT_BYTES, "grant_window": GRANT_WINDOW,
                            "max_incoming": MAX_INCOMING, "cutoffs": list(CUTOFFS)})
    store.set("handed", 0, {"frames": handed})
    store.set("taken", 0, {"frames": taken})
    if owned:
        store.set("ports", LOCAL, {"owned": 1})
    if state:
        store.set("rpcs", key(server), {
            "state": state, "out_length": length, "granted": granted, "sent": sent,
            "in_length": length, "received": received, "in_granted": granted,
            "bitmap": bitmap, "local_ip": wire.ip_int(A), "armed": armed,
            "local_mac": {"octets": list(MAC_A)}, "peer_mac": {"octets": list(MAC_B)}})
    cands: dict[str, list[int]] = {f: [0] * 16 for f in (
        "used", "id", "peer", "local_port", "peer_port", "length", "received", "granted",
        "rank", "born")}
    for i, slot in enumerate(slots):
        for field, value in slot.items():
            cands[field][i] = value
    store.set("cands", 0, cands)
    return store


slot = st.fixed_dictionaries({
    "used": st.sampled_from([0, 1, 1]), "id": st.sampled_from([ID, ID | 1, 7]),
    "peer": st.just(wire.ip_int(B)), "local_port": st.sampled_from([LOCAL, 1]),
    "peer_port": st.just(PEER), "length": edge_u32, "received": edge_u32,
    "granted": edge_u32, "born": st.sampled_from([0, 1, 2, 0x7FFFFFFF, 0x80000001, 0xFFFFFFFF])})


@SETTINGS
@given(state=states, server=st.booleans(), length=lengths, granted=edge_u32, sent=edge_u32,
       received=edge_u32, bitmap=bitmaps, slots=st.lists(slot, max_size=16),
       kind=st.sampled_from([wire.DATA] * 4 + [wire.GRANT, wire.RESEND, wire.UNKNOWN,
                                                wire.BUSY, wire.ACK, 0x77]),
       from_client=st.booleans(), msg_length=lengths,
       offset=st.one_of(st.integers(0, 800).map(lambda i: i * 1400),
                        st.sampled_from([1, 700, 0xFFFFFFFF])),
       size=st.sampled_from([1, 100, 1399, 1400]), ctrl=edge_u32, owned=st.booleans(),
       damage=st.integers(-1, 70), cut=st.integers(-1, 70), consistent=st.booleans())
def test_ingress_agrees(runner: Any, state: int, server: bool, length: int, granted: int,
                        sent: int, received: int, bitmap: list[int],
                        slots: list[dict[str, int]], kind: int, from_client: bool,
                        msg_length: int, offset: int, size: int, ctrl: int, owned: bool,
                        damage: int, cut: int, consistent: bool) -> None:
    if consistent:           # a packet of the RPC, well formed, in or out of its bitmap
        server = state in (0, 3, 4, 5)
        from_client = server
        msg_length = length = min(length, wire.MAX_MESSAGE)
        offset = min(offset, (length - 1) // 1400 * 1400)
        size = min(1400, length - offset)
        damage = cut = -1
    addr = {"src_mac": MAC_B, "dst_mac": MAC_A, "src": B, "dst": A, "sport": PEER,
            "dport": LOCAL}
    if kind == wire.DATA:
        (frame_bytes,) = wire.data_frames(**addr, rpc_id=ID, from_client=from_client,
                                          message=bytes(size))
        frame = bytearray(frame_bytes)
        frame[50:58] = msg_length.to_bytes(4, "big") + offset.to_bytes(4, "big")
    else:
        frame = bytearray(wire.control(kind if kind != 0x77 else wire.GRANT, **addr,
                                       rpc_id=ID, from_client=from_client, offset=ctrl,
                                       length=ctrl // 3, priority=ctrl & 0xFF))
        frame[38] = kind
    if 0 <= damage < len(frame):
        frame[damage] ^= 0x5A
    if 14 < cut < len(frame):
        frame = frame[:cut]
    store = store_with(runner, state, server, length, granted, sent, received, bitmap,
                       slots, owned)
    _k, _i, diffs = run_both(runner, "homa_rx", frame_input(bytes(frame), maps=store))
    assert not diffs, diffs


@SETTINGS
@given(state=states, server=st.booleans(), length=lengths, granted=edge_u32, sent=edge_u32,
       from_client=st.booleans(), msg_length=lengths,
       offset=st.one_of(st.integers(0, 800).map(lambda i: i * 1400), st.just(700)),
       size=st.sampled_from([1, 1399, 1400]), damage=st.integers(-1, 70),
       consistent=st.booleans())
def test_egress_agrees(runner: Any, state: int, server: bool, length: int, granted: int,
                       sent: int, from_client: bool, msg_length: int, offset: int, size: int,
                       damage: int, consistent: bool) -> None:
    if consistent:           # a packet the RPC may send, or one just past its grant
        server = state in (4, 5)
        from_client = not server
        msg_length = length = min(length, wire.MAX_MESSAGE)
        offset = min(offset, (length - 1) // 1400 * 1400)
        size = min(1400, length - offset)
        damage = -1
    (frame_bytes,) = wire.data_frames(src_mac=MAC_A, dst_mac=MAC_B, src=A, dst=B, sport=LOCAL,
                                      dport=PEER, rpc_id=ID, from_client=from_client,
                                      message=bytes(size))
    frame = bytearray(frame_bytes)
    frame[50:58] = msg_length.to_bytes(4, "big") + offset.to_bytes(4, "big")
    if 0 <= damage < len(frame):
        frame[damage] ^= 0x5A
    store = store_with(runner, state, server, length, granted, sent, 0, [0] * 12, [], True)
    _k, _i, diffs = run_both(runner, "homa_tx", frame_input(bytes(frame), maps=store))
    assert not diffs, diffs


backlogs = st.tuples(st.sampled_from([0, 1, 342, 343, 1000, 1 << 40]),
                    st.sampled_from([0, 1, 343, 1000, 1 << 40]))


@SETTINGS
@given(state=states, server=st.booleans(), slots=st.lists(slot, max_size=16),
       queued=st.lists(st.tuples(st.sampled_from([wire.GRANT, wire.RESEND, wire.ARM]),
                                 st.booleans(), edge_u32), max_size=3),
       size=st.integers(14, 200), backlog=backlogs, armed=st.sampled_from([0, 1]),
       rounds=st.sampled_from([0, 8, 9, 19, 0xFFFFFFFE, 0xFFFFFFFF]))
def test_generation_agrees(runner: Any, state: int, server: bool,
                           slots: list[dict[str, int]], queued: list[tuple[int, bool, int]],
                           size: int, backlog: tuple[int, int], armed: int,
                           rounds: int) -> None:
    """GRANTs, RESENDs and ARMs queued (for the RPC or for one gone), or the SRPT
    scheduler's choice among the slots when the queue is empty (on a FIFO round or not),
    with DATA frames waiting on the application's ring or not (`handed`, `taken`, either
    ahead)."""
    store = store_with(runner, state, server, 300_000, 60_000, 0, 0, [0] * 12, slots, True,
                       handed=backlog[0], taken=backlog[1], armed=armed)
    cands = runner.program.map("cands").value
    store.set("cands", 0, {**codec.decode(cands, store.maps["cands"].entries[bytes(4)]),
                           "rounds": rounds})
    layout = runner.program.map("ctrl").value
    for kind, mine, offset in queued:
        store.push_raw("ctrl", codec.encode(layout, {
            "id": ID | int(server) if mine else 99, "peer": wire.ip_int(B),
            "local_port": LOCAL, "peer_port": PEER, "kind": kind, "offset": offset,
            "length": offset // 2, "priority": 3}, "ctrl value"))
    _k, _i, diffs = run_both(runner, "homa_gen", frame_input(bytes(size), maps=store))
    assert not diffs, diffs


@SETTINGS
@given(state=st.sampled_from([1, 2, 3, 4, 5]), server=st.booleans(), length=lengths,
       granted=edge_u32, sent=edge_u32, received=edge_u32,
       last=edge_u32, silent=st.sampled_from([0, 1, 2, 3, 39, 40]),
       resends=st.sampled_from([0, 19, 20, 21]),
       slots=st.one_of(st.lists(slot, max_size=4), st.lists(slot, min_size=16, max_size=16)),
       busy=st.sampled_from([0, 1, 3, 4, 0xFFFFFFFF]),
       unslotted=st.sampled_from([0, 3, 4, 0xFFFFFFFF]))
def test_timer_agrees(runner: Any, state: int, server: bool, length: int, granted: int,
                      sent: int, received: int, last: int, silent: int, resends: int,
                      slots: list[dict[str, int]], busy: int, unslotted: int) -> None:
    store = store_with(runner, state, server, length, granted, sent, received, [0] * 12,
                       slots, True)
    k = key(server)
    rpcs = runner.program.map("rpcs")
    raw_key = codec.encode(rpcs.key, k, "key")
    value = codec.decode(rpcs.value, store.maps["rpcs"].entries[raw_key])
    store.set("rpcs", k, {**value, "last_received": last, "silent": silent,
                          "resends": resends, "busy": busy, "unslotted": unslotted})
    inp = frame_input(bytes(64), maps=store)
    kernel_result = runner.run_timer("homa_tick", raw_key, inp)
    interp_result = Interpreter(runner.program).run_timer("homa_tick", raw_key, inp)
    diffs = compare(kernel_result, interp_result)
    assert not diffs, diffs


def test_grants_wait_while_the_application_ring_is_long(runner: Any) -> None:
    """DATA frames ingress handed over and the application has not taken count as bytes
    granted and not received: a message 60,000 bytes in gets grant_window more with the
    ring empty, only what is left of max_incoming with 300 frames waiting, and nothing
    with 400 (560,000 bytes, over max_incoming); the kernel and the interpreter agree."""
    slots = [{"used": 1, "id": ID | 1, "peer": wire.ip_int(B), "local_port": LOCAL,
              "peer_port": PEER, "length": 300_000, "received": 60_000, "granted": 60_000}]
    offsets = {}
    for waiting in (0, 300, 400):
        store = store_with(runner, 3, True, 300_000, 60_000, 0, 60_000, [0] * 12, slots,
                           True, handed=1_000 + waiting, taken=1_000)
        k, _i, diffs = run_both(runner, "homa_gen", frame_input(bytes(64), maps=store))
        assert not diffs, diffs
        grant = wire.parse(k.packet) if k.action == 3 else None
        offsets[waiting] = grant.offset if grant is not None else None
    assert offsets == {0: 60_000 + GRANT_WINDOW,
                       300: 60_000 + MAX_INCOMING - 300 * wire.PAYLOAD, 400: None}


def test_an_arm_request_starts_a_timer_that_never_ran(runner: Any) -> None:
    """An RPC whose timer the kernel could not start (`armed` 0): an ARM request makes gen
    start it, sends nothing, and asks for the next round; one for an RPC gone is dropped."""
    store = store_with(runner, 3, True, 300_000, 60_000, 0, 58_800, [0] * 12, [], True,
                       armed=0)
    store.push_raw("ctrl", codec.encode(runner.program.map("ctrl").value, {
        "id": ID | 1, "peer": wire.ip_int(B), "local_port": LOCAL, "peer_port": PEER,
        "kind": wire.ARM, "offset": 0, "length": 0, "priority": 0}, "ctrl value"))
    k, _i, diffs = run_both(runner, "homa_gen", frame_input(bytes(64), maps=store))
    assert not diffs, diffs
    assert k.action == 1                                 # nothing sent
    assert _rpc(runner, k.maps, True)["armed"] == 1
    assert [t.delay_ns for t in k.timers] == [5_000_000]
    assert k.maps["wake"].entries[bytes(4)][:4] == (1).to_bytes(4, "little")  # round again


def test_a_client_asks_a_busy_server_less_often(runner: Any) -> None:
    """A client waiting on its response asks the server (RESEND) after three silent ticks;
    each BUSY answer doubles that, up to 24 ticks (120 ms), and a GRANT (the server at
    work on the request) brings it back to three."""
    def tick(busy: int, silent: int) -> bool:
        store = store_with(runner, 1, False, 300_000, 60_000, 60_000, 0, [0] * 12, [], True)
        store.set("rpcs", key(False), {**_rpc(runner, store, False), "silent": silent,
                                       "busy": busy})
        inp = frame_input(bytes(64), maps=store)
        raw_key = codec.encode(runner.program.map("rpcs").key, key(False), "key")
        result = runner.run_timer("homa_tick", raw_key, inp)
        diffs = compare(result, Interpreter(runner.program).run_timer("homa_tick", raw_key,
                                                                      inp))
        assert not diffs, diffs
        return bool(result.maps["ctrl"].queue)          # a RESEND queued for gen
    # silent counts the ticks before this one
    assert [tick(0, n) for n in (1, 2)] == [False, True]
    assert [tick(1, n) for n in (4, 5)] == [False, True]
    assert [tick(3, n) for n in (22, 23)] == [False, True]
    assert [tick(9, n) for n in (22, 23)] == [False, True]     # no further than 120 ms

    addr = {"src_mac": MAC_B, "dst_mac": MAC_A, "src": B, "dst": A, "sport": PEER,
            "dport": LOCAL}
    store = store_with(runner, 1, False, 300_000, 60_000, 60_000, 0, [0] * 12, [], True)
    for kind, expected in ((wire.BUSY, 1), (wire.BUSY, 2), (wire.GRANT, 0)):
        frame = wire.control(kind, **addr, rpc_id=ID, from_client=False, offset=120_000,
                             priority=2)
        k, _i, diffs = run_both(runner, "homa_rx", frame_input(frame, maps=store))
        assert not diffs, diffs
        store = k.maps
        assert _rpc(runner, store, False)["busy"] == expected


def _rpc(runner: Any, store: MapStore, server: bool) -> dict[str, Any]:
    rpcs = runner.program.map("rpcs")
    return codec.decode(rpcs.value, store.maps["rpcs"].entries[codec.encode(
        rpcs.key, key(server), "key")])


def _repair(runner: Any, store: MapStore, server: bool, offset: int, length: int) -> Any:
    """homa_gen on a copy of `store` with one REPAIR request queued."""
    store = store.copy()
    store.push_raw("ctrl", codec.encode(runner.program.map("ctrl").value, {
        "id": ID | int(server), "peer": wire.ip_int(B), "local_port": LOCAL,
        "peer_port": PEER, "kind": wire.REPAIR, "offset": offset, "length": length,
        "priority": 7}, "ctrl value"))
    k, _i, diffs = run_both(runner, "homa_gen", frame_input(bytes(64), maps=store))
    assert not diffs, diffs
    return k


def test_a_repair_forgets_the_lost_run_and_asks_for_it_again(runner: Any) -> None:
    """A request whole in the data path (SERVER_BUSY, every bit set) whose packets 64-69
    the application lost: REPAIR clears their bits and sends a RESEND for them; the request
    stays SERVER_BUSY (its application may answer); the packets sent again are taken, the
    rest still dropped as duplicates; a run part taken, part not, changes nothing; a run
    forgotten before is asked for again."""
    length = 200_000                                     # 143 packets, the last 1,200 bytes
    full = [0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF, (1 << 15) - 1] + [0] * 9
    store = store_with(runner, 4, True, length, length, 0, length, full, [], True)
    k = _repair(runner, store, True, 64 * 1400, 6 * 1400)
    resend = wire.parse(k.packet)
    assert k.action == 3 and resend is not None and resend.kind == wire.RESEND
    assert (resend.offset, resend.ctrl_length, resend.dst) == (64 * 1400, 6 * 1400, B)
    rpc = _rpc(runner, k.maps, True)
    assert rpc["bitmap"][1] == 0xFFFFFFFFFFFFFFFF & ~0x3F and rpc["state"] == 4
    assert rpc["received"] == length - 6 * 1400
    per_cpu = k.maps["counters"].entries[bytes(4)]
    counters = runner.program.map("counters").value
    assert sum(codec.decode(counters, bytes(v))["repaired"] for v in per_cpu) == 1

    addr = {"src_mac": MAC_B, "dst_mac": MAC_A, "src": B, "dst": A, "sport": PEER,
            "dport": LOCAL}

    def data(index: int, maps: MapStore) -> Any:
        (frame,) = wire.data_frames(**addr, rpc_id=ID, from_client=True, message=bytes(1400))
        frame = frame[:50] + length.to_bytes(4, "big") + (index * 1400).to_bytes(4, "big") + \
            frame[58:]
        r, _i, diffs = run_both(runner, "homa_rx", frame_input(frame, maps=maps))
        assert not diffs, diffs
        return r
    again = data(64, k.maps)
    assert again.redirect == ("sockets", 0)              # to the application
    assert _rpc(runner, again.maps, True)["bitmap"][1] & 1 == 1
    dup = data(70, again.maps)                           # never lost: a duplicate, dropped
    assert dup.redirect is None and dup.action == 1

    stale = _repair(runner, again.maps, True, 64 * 1400, 2 * 1400)   # 64 back, 65 not
    assert stale.action == 1 and _rpc(runner, stale.maps, True) == _rpc(runner, again.maps,
                                                                      True)
    twice = _repair(runner, again.maps, True, 65 * 1400, 5 * 1400)    # forgotten before
    asked = wire.parse(twice.packet)
    assert twice.action == 3 and asked is not None and asked.offset == 65 * 1400
    assert _rpc(runner, twice.maps, True)["received"] == _rpc(runner, again.maps,
                                                              True)["received"]
    tail = _repair(runner, twice.maps, True, 142 * 1400, 1_200)      # the short last packet
    assert tail.action == 3
    assert _repair(runner, tail.maps, True, 141 * 1400, 2 * 1400).action == 1   # wrong bytes


@SETTINGS
@given(state=states, server=st.booleans(), length=lengths, received=edge_u32,
       bitmap=bitmaps, first=st.integers(0, 800), count=st.integers(0, 70),
       skew=st.sampled_from([0, 0, 0, -1, 1, 1400]))
def test_repairs_agree(runner: Any, state: int, server: bool, length: int, received: int,
                       bitmap: list[int], first: int, count: int, skew: int) -> None:
    """REPAIR requests on and off packet and word boundaries, of the right size or not,
    for runs taken, not taken or part taken, in every state."""
    store = store_with(runner, state, server, length, length, 0, received, bitmap, [], True)
    offset = first * 1400
    size = max(0, min(count * 1400, length - offset)) + skew
    _repair(runner, store, server, offset, size & 0xFFFFFFFF)


def test_every_tenth_round_grants_the_oldest_message_first(runner: Any) -> None:
    """Nine messages wait for grants: eight of 200,000 bytes and one of 1 MB, which took
    its slot first. SRPT alone ranks the long one ninth, past OVERCOMMIT, so a steady load of
    shorter ones would starve it; every FIFO_EVERY-th round it goes first (and the others
    move down one place, the eighth out). The kernel and the interpreter agree."""
    def waiting(i: int, length: int, born: int) -> dict[str, int]:
        return {"used": 1, "id": (ID + 2 * i) | 1, "peer": wire.ip_int(B),
                "local_port": LOCAL, "peer_port": PEER, "length": length,
                "received": 60_000, "granted": 60_000, "born": born}
    slots = [waiting(i, 200_000, 2 + i) for i in range(8)]
    slots.insert(3, waiting(99, wire.MAX_MESSAGE, 1))     # the oldest, in no special slot
    trace = runner.program.map("trace").value
    granted: dict[int, list[tuple[int, int]]] = {}
    for rounds in (0, 8, 9, 10, 19):           # rounds before this one
        store = store_with(runner, 0, True, 0, 0, 0, 0, [0] * 12, slots, True)
        raw = store.maps["cands"].entries[bytes(4)]
        cands = codec.decode(runner.program.map("cands").value, raw)
        store.set("cands", 0, {**cands, "rounds": rounds, "entered": 9})
        # room for a window to each of the OVERCOMMIT (max_incoming is not what is tested)
        store.set("config", 0, {"rtt_bytes": RTT_BYTES, "grant_window": GRANT_WINDOW,
                                "max_incoming": OVERCOMMIT * GRANT_WINDOW,
                                "cutoffs": list(CUTOFFS)})
        k, _i, diffs = run_both(runner, "homa_gen", frame_input(bytes(64), maps=store))
        assert not diffs, diffs
        records = [codec.decode(trace, r) for r in k.ringbuf.get("trace", [])]
        granted[rounds] = [(r["rank"], r["id"]) for r in records]
    long_id = (ID + 2 * 99) | 1
    shorts = [(ID + 2 * i) | 1 for i in range(8)]
    for rounds in (0, 8, 10):                    # the 1st, 9th and 11th rounds: SRPT
        assert granted[rounds] == list(enumerate(shorts[:OVERCOMMIT])), granted[rounds]
    for rounds in (9, 19):                       # the 10th and 20th: the oldest first
        assert granted[rounds] == list(enumerate([long_id] + shorts[:OVERCOMMIT - 1])), \
            granted[rounds]


@pytest.mark.parametrize("waited", [3, 4])
def test_a_message_that_waited_for_a_slot_takes_the_youngest_s(runner: Any,
                                                               waited: int) -> None:
    """Every slot is taken and a 300,000-byte request has all it was granted: at each tick
    it looks for a slot again (no_slot counted, `unslotted` up by one); once it has waited
    EVICT_TICKS (4) it takes the slot of the message that entered last among those with
    all they were granted in (what is granted and not in counts against max_incoming):
    slot 9 entered last but has 100,000 bytes on their way, so slot 2, which entered just
    before it. The evicted message waits in its turn. The kernel and the interpreter
    agree."""
    slots = [{"used": 1, "id": (ID + 2 * (i + 1)) | 1, "peer": wire.ip_int(B),
              "local_port": LOCAL, "peer_port": PEER, "length": 500_000,
              "received": 60_000, "granted": 160_000 if i == 9 else 60_000,
              "born": 100 + (i * 7) % 16} for i in range(16)]
    youngest = max(range(16), key=lambda i: slots[i]["born"])
    victim = max((i for i in range(16) if i != 9), key=lambda i: slots[i]["born"])
    store = store_with(runner, 3, True, 300_000, 60_000, 0, 60_000, [0] * 12, slots, True)
    k = key(True)
    rpcs = runner.program.map("rpcs")
    raw_key = codec.encode(rpcs.key, k, "key")
    value = codec.decode(rpcs.value, store.maps["rpcs"].entries[raw_key])
    store.set("rpcs", k, {**value, "unslotted": waited, "last_received": 60_000})
    cands = runner.program.map("cands").value
    store.set("cands", 0, {**codec.decode(cands, store.maps["cands"].entries[bytes(4)]),
                           "entered": 115})
    inp = frame_input(bytes(64), maps=store)
    kernel_result = runner.run_timer("homa_tick", raw_key, inp)
    diffs = compare(kernel_result, Interpreter(runner.program).run_timer("homa_tick",
                                                                         raw_key, inp))
    assert not diffs, diffs
    after = codec.decode(cands, kernel_result.maps.maps["cands"].entries[bytes(4)])
    counters = codec.decode(runner.program.map("counters").value,
                            kernel_result.maps.maps["counters"].entries[bytes(4)][0])
    rpc = codec.decode(rpcs.value, kernel_result.maps.maps["rpcs"].entries[raw_key])
    if waited < 4:
        assert after["id"] == [s["id"] for s in slots]
        assert (counters["no_slot"], counters["evicted"], rpc["unslotted"]) == (1, 0, waited + 1)
    else:
        assert (youngest, victim) == (9, 2) and after["id"][2] == ID | 1
        assert after["id"][:2] + after["id"][3:] == [s["id"] for s in slots[:2] + slots[3:]]
        assert (after["born"][2], after["entered"]) == (116, 116)
        assert (after["received"][2], after["length"][2]) == (60_000, 300_000)
        assert (counters["no_slot"], counters["evicted"], rpc["unslotted"]) == (0, 1, 0)

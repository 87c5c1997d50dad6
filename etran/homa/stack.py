"""The Homa library of one host: the data path loaded and attached, and the applications'
clients and servers.

`HomaStack(topology, host)` compiles and loads `etran/transports/homa.py`, attaches its
ingress to the host's interface, opens the AF_XDP socket ingress delivers to, and runs a gen
pump (GRANTs and RESENDs, whenever the data path raises `wake`) and a dispatcher thread:
DATA goes to the message it belongs to; a GRANT or RESEND makes the sender of that message
send what it may now send; UNKNOWN makes a client send its request again; an abort event
from the data path's timers fails the call.

Sending: a message is cut into DATA packets once, and handed to the egress program in order.
Egress sends what the receiver granted and hands the first packet past the grant back
(mainline XDP has no queue that holds frames for later: the library is that queue, and
egress, which it cannot bypass, decides). On the native path (the default: egress runs on
the far end of the stack's own veth, etran.runtime.native) the library keeps the grant
itself, from the GRANTs and RESENDs ingress hands over, and sends no further; a packet
egress returns anyway rewinds its message to it. With test runs (`native_egress=False`)
egress says at once where it stopped, and the library sends again from there when the next
GRANT arrives.
"""

from __future__ import annotations

import collections
import errno
import itertools
import os
import queue
import random
import select
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from etran.abi import XDP_REDIRECT, XDP_TX
from etran.homa import wire
from etran.homa.handling import Handled
from etran.homa.wire import ACK, DATA, GRANT, RESEND, UNKNOWN, Packet, priority
from etran.ir import codec
from etran.runtime.afxdp import XskSocket
from etran.runtime.errors import BpfError
from etran.runtime.hooks import Egress, Gen, GenPump
from etran.runtime.loader import load_object
from etran.runtime.maps import RingBufferReader
from etran.runtime.native import NativeEgress
from etran.runtime.pinned import (
    Detacher,
    Stopper,
    close_all,
    compiled_transport,
    open_pinned_host,
    use_native_egress,
)
from etran.runtime.ringcount import RingCount
from etran.runtime.topology import Host, Topology
from etran.runtime.transmit import HostPort
from etran.runtime.typed import TypedMap

TRANSPORT = Path(__file__).resolve().parents[1] / "transports" / "homa.py"
RTT_BYTES = 60_000
GRANT_WINDOW = 100_000
MAX_INCOMING = 480_000
MAX_RESTARTS = 5                  # times a request is sent again after UNKNOWN
RESTART_GUARD = 0.05              # seconds after a restart in which UNKNOWNs are stale
MAX_RESEND_RUNS = 16              # RESENDs asked for at once for one stalled message
PRUNE_INTERVAL = 0.1              # seconds between looks for RPCs the data path removed
PRUNE_IDLE = 2.0                  # ... which saw no packet for this long
RING_SIZE = 2048                  # the AF_XDP socket's receive ring, in frames
RX_BATCH = 512                    # frames taken off it at a time, to wait by priority
CHUNK = 32                        # frames handled between two looks at the ring
STARVE_CHUNKS = 64                # a priority passed over for this many chunks in a row
                                  # (2,048 frames) goes first for one
HIGH_FIRST = tuple(range(7, -1, -1))  # the library's order of priorities, normally
# ... and with priority p starved: p first, then the others highest first
STARVED_FIRST = tuple((p,) + tuple(q for q in HIGH_FIRST if q != p) for p in range(8))
REPAIR_LOOK = 0.02                # seconds between looks at the AF_XDP socket's losses
# How often the gen pump looks at its flag besides its ring's wake-ups. TCP's looks every
# second (FALLBACK_FLAG_INTERVAL); at that, about one incast run in five had an RPC
# time out (6 of 27 runs, against none of 35 at 20 ms): some wake-up the ring does not
# give (docs/homa.md, "Found, worked around, not understood"; `ask_gen`'s order, since
# fixed, is a candidate not yet measured).
FLAG_LOOK = 0.02
REPAIR_IDLE = 0.02                # a message is repaired once it saw no packet this long
REPAIR_SPAN = 1.0                 # ... for this long after the socket last lost frames
WATCH_IDLE = 0.1                  # an RPC idle this long is checked for a timer that never ran
CUTOFFS = (1_400, 10_000, 30_000, RTT_BYTES)   # unscheduled priority 7, 6, 5, 4 up to these

# the data path's RpcKey as bytes: id, peer (the address's big-endian value), local port,
# peer port, each in the host's order (checking that an RPC is there needs no decoding)
_RPC_KEY = struct.Struct("<QIHH")
Key = tuple[int, str, int, int]    # (id as this host names it, peer address, peer port, local port)

def _transport(native_egress: bool = False) -> Any:
    """The data path, compiled once per process (`compiled_transport`)."""
    return compiled_transport(TRANSPORT, native_egress)


def _error(code: int, what: str) -> OSError:
    return OSError(code, f"{os.strerror(code)}: {what}")


@dataclass
class _Outbound:
    """A message being sent: its packets, and how far egress has let them go. On the
    native path also how far the receiver granted (`granted`, bytes, from the GRANTs and
    RESENDs ingress hands over): the library sends no further, and egress, which it cannot
    bypass, still decides."""

    frames: list[bytes]
    length: int = 0
    granted: int = 0
    next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    touched: float = field(default_factory=time.monotonic)


@dataclass
class _Inbound:
    """A message being received: its bytes as they arrive (ingress drops duplicates)."""

    length: int
    buffer: bytearray = field(init=False)
    have: list[bool] = field(init=False)
    received: int = 0
    touched: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.buffer = bytearray(self.length)
        self.have = [False] * -(-self.length // wire.PAYLOAD)

    def place(self, length: int, offset: int, payload: bytes | memoryview) -> bool:
        """Put a DATA packet's bytes in place; True once the message is whole."""
        size = len(payload)
        if length != self.length or offset + size > length:
            return False
        self.touched = time.monotonic()
        index = offset // wire.PAYLOAD
        if self.have[index]:
            return False
        self.have[index] = True
        self.buffer[offset:offset + size] = payload
        self.received += size
        return self.received >= length


@dataclass
class _Call:
    key: Key
    request: bytes
    future: Future[bytes]
    out: _Outbound
    inbound: _Inbound | None = None
    restarts: int = 0
    restarted: float = 0.0


@dataclass(frozen=True)
class Request:
    """A request a server received: answer it with `Server.reply(request, response)`."""

    peer: str
    peer_port: int
    port: int
    id: int
    payload: bytes

    @property
    def key(self) -> Key:
        return (self.id | 1, self.peer, self.peer_port, self.port)


# what a server's handler is given and returns: the response, or None (replied later)
Handler = Callable[[Request], "bytes | None"]


class HomaStack:
    """etran's Homa on host `host` of `topology`; close it (or `with`) before the topology.
    One stack per host: it takes the interface's AF_XDP queue. `ring_size`: the frames its
    AF_XDP socket's receive ring holds; what arrives while it is full is lost there after
    the data path took it, and the library has it sent again (`_look_for_losses`)."""

    def __init__(self, topology: Topology, host: str, *, rtt_bytes: int = RTT_BYTES,
                 grant_window: int = GRANT_WINDOW, max_incoming: int = MAX_INCOMING,
                 cutoffs: tuple[int, int, int, int] = CUTOFFS,
                 native_egress: bool = True, ring_size: int = RING_SIZE) -> None:
        compiled = _transport(native_egress)
        me = topology.host(host)
        loaded = topology.own(load_object(compiled.elf, f"homa_{host}"[:15]), host)
        topology.attach(host, loaded.programs["homa_rx"])
        self._start(me, {h.ip: h.mac_bytes for h in topology.hosts.values()}, loaded.maps,
                    loaded.programs, compiled.program, [Detacher(topology, host)],
                    {"rtt_bytes": rtt_bytes, "grant_window": grant_window,
                     "max_incoming": max_incoming, "cutoffs": list(cutoffs)}, native_egress,
                    ring_size)

    @classmethod
    def in_run(cls, record: Any, host: str, *, native_egress: bool = True) -> HomaStack:
        """The stack of host `host` of a run `etran up etran/transports/homa.py` started: its
        pinned maps and programs, its interface, its neighbours (how `etran rpc` runs inside
        a host's namespace). The configuration is the defaults unless one is set. With
        `native_egress` (the default) the native build's `homa_tx` that `etran up` pinned
        beside the maps runs on the stack's veth pair (a run without it: built and loaded
        here on the run's maps)."""
        from etran.runtime.typed import program_of
        program = program_of(TRANSPORT)       # the declarations: the run has the code
        pinned = open_pinned_host(record, host, program, ("homa_tx", "homa_gen"))
        if native_egress:
            use_native_egress(pinned, lambda: _transport(True).elf, "homa_tx",
                              f"homa_{host}_tx")
        stack = cls.__new__(cls)
        stack._start(pinned.host, pinned.neighbours, pinned.maps, pinned.programs, program,
                     pinned.owned, None, native_egress)
        return stack

    def _start(self, me: Host, neighbours: dict[str, bytes], maps: dict[str, Any],
               programs: dict[str, Any], program: Any, owned: list[Any],
               config: dict[str, Any] | None, native_egress: bool = False,
               ring_size: int = RING_SIZE) -> None:
        self.host = me
        self.neighbours = neighbours
        self._program = program
        self.raw_maps = maps
        self.maps: dict[str, TypedMap] = {m.name: TypedMap(maps[m.name], m)
                                          for m in program.maps if m.name in maps}
        current = self.maps["config"].get(0)
        if config is not None or not isinstance(current, dict) or not current["rtt_bytes"]:
            self.maps["config"][0] = config or {
                "rtt_bytes": RTT_BYTES, "grant_window": GRANT_WINDOW,
                "max_incoming": MAX_INCOMING, "cutoffs": list(CUTOFFS)}
        self.rtt_bytes = self.maps["config"][0]["rtt_bytes"]
        self._trace_reader: RingBufferReader | None = None
        self._closers: list[Any] = list(owned)
        try:
            self.xsk = XskSocket(me.interface, ring_size=ring_size)
            self._closers.insert(0, self.xsk)
            # DATA frames waiting on the socket's ring count against the grants
            # (`ring_backlog` in the transport)
            self._ring = RingCount(maps["handed"], maps["taken"], self.xsk)
            self.xsk.register(maps["sockets"])
            self.native: NativeEgress | None = None
            self.egress: Egress | NativeEgress
            if native_egress:
                self.egress = self.native = NativeEgress(maps, programs["homa_tx"],
                                                         me.interface)
            else:
                self.egress = Egress(programs["homa_tx"], me.interface)
            self._closers.insert(0, self.egress)
            self.gen = Gen(programs["homa_gen"], me.interface)
            self._closers.insert(0, self.gen)
            self.port = HostPort(me.interface)
            self._closers.insert(0, self.port)
            self.pump = GenPump(self.gen, ring=maps["wake_ring"], flag=(maps["wake"], bytes(4)),
                                interval=FLAG_LOOK)
            self._closers.insert(0, Stopper(self.pump))
            self._events = RingBufferReader(maps["events"])
            self._closers.insert(0, self._events)
        except BaseException:
            self._close_parts()
            raise
        self._lock = threading.Lock()
        self._calls: dict[Key, _Call] = {}
        self._servers: dict[int, Server] = {}
        self._serving: dict[Key, _Outbound] = {}        # responses being sent
        self._requests: dict[Key, _Inbound] = {}        # requests being received
        # requests handed to the server application (until the data path removes them)
        self._handed: dict[Key, float] = {}
        # messages the data path has packets of and this library none, first seen when
        self._unseen: dict[Key, float] = {}
        self._lost_frames = 0             # the AF_XDP socket's count of frames it lost
        self._ip_bytes = bytes(map(int, me.ip.split(".")))
        self._peers: dict[bytes, str] = {}   # a peer's address: 4 bytes -> dotted quad
        self._repair_until = 0.0
        self._ids = itertools.count(random.getrandbits(40) * 2, 2)
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._dispatch, name=f"etran-homa-{me.name}",
                                        daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- applications
    def client(self, port: int | None = None) -> Client:
        return Client(self, port if port is not None else self._free_port())

    def server(self, port: int, handler: Handler | None = None) -> Server:
        """A server on `port`: requests come from `Server.receive`, or, with `handler`,
        each is passed to it as it arrives (see `Server`)."""
        with self._lock:
            if port in self._servers:
                raise _error(errno.EADDRINUSE, f"serve port {port}")
            server = Server(self, port, handler)
            self._servers[port] = server
        self.maps["ports"][port] = {"owned": 1}
        return server

    def rpcs(self) -> list[dict[str, Any]]:
        """The data path's RPCs: key, state, and bytes sent, granted and received."""
        out = []
        for key, value in self.maps["rpcs"].items():
            if isinstance(value, dict):
                out.append({**key, **{k: v for k, v in value.items()
                                      if k not in ("bitmap", "local_mac", "peer_mac", "timer")}})
        return out

    def candidates(self) -> dict[str, Any]:
        """The grant scheduler's slots, as the data path has them."""
        got = self.maps["cands"].get(0)
        return got if isinstance(got, dict) else {}

    def grants(self) -> list[dict[str, int]]:
        """The GRANTs the scheduler decided since the last call, oldest first: message (id,
        peer, ports), offset granted, bytes received then, SRPT rank, time. The ring holds
        1 MiB; records past that are lost until it is read."""
        if self._trace_reader is None:
            self._trace_reader = RingBufferReader(self.raw_maps["trace"])
            self._closers.insert(0, self._trace_reader)
        layout = self._program.map("trace").value
        return [codec.decode(layout, raw) for raw in self._trace_reader.drain()]

    def counters(self) -> dict[str, int]:
        """The data path's counters, summed over CPUs."""
        out: dict[str, int] = {}
        for entry in self.maps["counters"].get(0) or []:
            for name, value in entry.items():
                out[name] = out.get(name, 0) + value
        return out

    def close(self) -> None:
        """Fail what is outstanding, stop the threads, release sockets and programs."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            calls = list(self._calls.values())
            self._calls.clear()
        for call in calls:
            if not call.future.done():
                call.future.set_exception(_error(errno.ESHUTDOWN, "the Homa stack closed"))
        self._close_parts()

    def __enter__(self) -> HomaStack:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ---------------------------------------------------------------- internals
    def _close_parts(self) -> None:
        parts, self._closers = self._closers, []
        close_all(parts)

    def _free_port(self) -> int:
        while True:
            port = random.randint(32768, 60999)
            if port not in self._servers:
                return port

    def _raw_key(self, key: Key) -> bytes:
        """`key` as the data path's `rpcs` map has it (no encoding through the struct)."""
        return _RPC_KEY.pack(key[0], wire.ip_int(key[1]), key[3], key[2])

    def _map_key(self, key: Key) -> dict[str, int]:
        return {"id": key[0], "peer": wire.ip_int(key[1]), "local_port": key[3],
                "peer_port": key[2]}

    def _outbound(self, key: Key, message: bytes, from_client: bool) -> _Outbound:
        """A message to send, granted what the data path grants a new one (`first_grant`)."""
        return _Outbound(self._frames(key, message, from_client), len(message),
                         min(len(message), self.rtt_bytes))

    def _frames(self, key: Key, message: bytes, from_client: bool) -> list[bytes]:
        local_id, peer, peer_port, local_port = key
        return wire.data_frames(src_mac=self.host.mac_bytes, dst_mac=self._mac(peer),
                                src=self.host.ip, dst=peer, sport=local_port, dport=peer_port,
                                rpc_id=local_id & ~1, from_client=from_client,
                                message=message)

    def _mac(self, ip: str) -> bytes:
        try:
            return self.neighbours[ip]
        except KeyError:
            raise _error(errno.EHOSTUNREACH, f"{ip} is not a host of this topology") from None

    def _send(self, out: _Outbound, what: str) -> None:
        """Hand the message's packets to egress from where it stopped, until it hands one
        back (over the grant: sent again on the next GRANT) or all went."""
        with out.lock:
            if out.next >= len(out.frames):
                return
            if self.native is not None:
                # what was granted, no more: the rest waits for a GRANT (a packet egress
                # returns anyway comes back to `_returned`)
                end = min(len(out.frames), out.granted // wire.PAYLOAD
                          + (1 if out.granted >= out.length else 0))
                if end > out.next:
                    self.native.send(out.frames[out.next:end])
                    out.next = end
                return
            assert isinstance(self.egress, Egress)
            sent, verdict, _frame = self.egress.send_until_refused(out.frames[out.next:])
            out.next += sent
        if verdict not in (XDP_TX, XDP_REDIRECT):
            raise _error(errno.ECONNABORTED, f"{what}: the data path refused packet "
                         f"{out.next}: the RPC is gone (the peer stopped answering and the "
                         "data path's timers removed it) or not in a state that may send")

    def _resend(self, out: _Outbound, offset: int, length: int) -> None:
        first = offset // wire.PAYLOAD
        last = min(len(out.frames), -(-(offset + length) // wire.PAYLOAD))
        # Under the message's lock, as `_send`: egress keeps the highest byte sent
        # (`Rpc.sent`, shown by `etran status`) with a compare and a store, so two runs of
        # it for one RPC at once could lose the higher end.
        with out.lock:
            frames = out.frames[first:min(last, out.next)]
            if frames and self.native is not None:
                self.native.send(frames)
            elif frames:
                assert isinstance(self.egress, Egress)
                self.egress.send_until_refused(frames)

    def _control(self, kind: int, key: Key, from_client: bool) -> None:
        local_id, peer, peer_port, local_port = key
        self.port.transmit(wire.control(kind, src_mac=self.host.mac_bytes,
                                        dst_mac=self._mac(peer), src=self.host.ip, dst=peer,
                                        sport=local_port, dport=peer_port,
                                        rpc_id=local_id & ~1, from_client=from_client))

    def _dispatch(self) -> None:
        poller = select.poll()
        poller.register(self.xsk.fileno(), select.POLLIN)
        poller.register(self.egress.wakeup_fd(), select.POLLIN)
        pruned = looked = time.monotonic()
        # frames taken off the ring and not handled yet, by priority (`wire.priority`)
        queues: list[collections.deque[bytes]] = [collections.deque() for _ in range(8)]
        passed = [0] * 8       # by priority: chunks in a row that left its frames waiting
        held = 0
        try:
            while not self._stop.is_set():
                if not held:
                    poller.poll(5)
                now = time.monotonic()
                counted = None if held else self._ring.before_recv(now)
                frames = self.xsk.recv(RX_BATCH, timeout=0)
                # The ring and this library are the receiver's only queue, and Homa's
                # priorities only help where a queue honours them: what comes off the
                # ring waits here by priority (the sender's, the IP header's top three
                # bits: short messages and control packets high), and the ring is looked
                # at again after every CHUNK frames handled, so a short message's packet
                # waits behind at most that many of lower priority, not behind the whole
                # backlog. A priority passed over STARVE_CHUNKS chunks in a row goes first
                # for one, so that a steady stream of higher ones starves no message
                # (every eighth chunk lowest first, as it was, let long messages overtake
                # each other against SRPT: their p50 in the bench went from 40 to 160-220
                # ms, docs/homa.md). A DATA frame
                # counts as taken (`taken`, the grants' view of the backlog) when it
                # leaves the ring: counted only once handled, it held the grants back
                # longer and long messages took longer in the bench.
                data = 0
                for frame in frames:
                    queues[priority(frame)].append(frame)
                    if len(frame) > 38 and frame[38] == DATA:
                        data += 1
                held += len(frames)
                budget = CHUNK
                order = HIGH_FIRST
                for level in range(8):
                    if passed[level] >= STARVE_CHUNKS:
                        order = STARVED_FIRST[level]
                        break
                for level in order:
                    queue_ = queues[level]
                    if queue_ and budget:
                        passed[level] = -1           # served in this chunk
                    while queue_ and budget:
                        frame = queue_.popleft()
                        budget -= 1
                        # DATA, the most of what comes, without building a Packet
                        fields = wire.data_fields(frame)
                        if fields is not None:
                            src, dst, sport, dport, flags, rpc_id, length, offset, end = fields
                            if dst == self._ip_bytes:
                                self._data(src, sport, dport, flags, rpc_id, length, offset,
                                           memoryview(frame)[wire.DATA_HEADERS:end])
                            continue
                        p = wire.parse(frame)
                        if p is not None and p.dst == self.host.ip:
                            self._packet(p)
                    if not budget:
                        break
                for level in range(8):
                    passed[level] = passed[level] + 1 if passed[level] >= 0 and queues[level] \
                        else 0
                held -= CHUNK - budget
                if self._ring.after_recv(counted, data, now, empty=not frames and not held):
                    self.pump.ask()          # the grants held back while the ring was long
                for frame in self.egress.take_returned(256):
                    if self.native is not None:    # (test runs: we know where we stopped)
                        self._returned(frame)
                for raw in self._events.drain():
                    self._event(codec.decode(self._program.map("events").value, raw))
                now = time.monotonic()
                if now - pruned > PRUNE_INTERVAL:
                    pruned = now
                    self._prune()
                    self._watch(now)
                if now - looked > REPAIR_LOOK:
                    looked = now
                    self._look_for_losses(now, quiet=not held and not self.xsk.waiting())
        except BaseException as exc:  # surfaced to the callers
            self.error = exc
            with self._lock:
                calls = list(self._calls.values())
            for call in calls:
                if not call.future.done():
                    call.future.set_exception(exc)

    def _returned(self, frame: bytes) -> None:
        """A DATA packet egress returned on the native path (over what the data path
        granted): its message is sent again from there when the next GRANT comes."""
        p = wire.parse(frame)
        if p is None or p.kind != DATA:
            return
        key: Key = (p.rpc_id if p.from_client else p.rpc_id | 1, p.dst, p.dport, p.sport)
        with self._lock:
            call = self._calls.get(key)
            out = call.out if call is not None else self._serving.get(key)
        if out is not None:
            with out.lock:
                out.next = min(out.next, p.offset // wire.PAYLOAD)

    def _data(self, src: bytes, sport: int, dport: int, flags: int, rpc_id: int,
              length: int, offset: int, payload: memoryview) -> None:
        """A DATA packet for us (`wire.data_fields`): a request's or a response's bytes."""
        peer = self._peers.get(src)
        if peer is None:
            peer = self._peers[src] = wire.ip_str(int.from_bytes(src, "big"))
        if flags & wire.FROM_CLIENT:
            self._request_data((rpc_id | 1, peer, sport, dport), length, offset, payload)
        else:
            self._response_data((rpc_id, peer, sport, dport), length, offset, payload)

    def _packet(self, p: Packet) -> None:
        """A control packet for us (DATA goes to `_data`)."""
        key: Key = (p.local_id, p.src, p.sport, p.dport)
        with self._lock:
            call = self._calls.get(key)
            out = call.out if call is not None else self._serving.get(key)
        if out is not None and p.kind in (GRANT, RESEND):
            # as ingress raised the data path's grant (`homa_rx`)
            allowed = p.offset if p.kind == GRANT else \
                p.offset + min(p.ctrl_length, wire.MAX_MESSAGE)
            with out.lock:
                out.granted = max(out.granted, min(allowed, out.length))
        if p.kind == GRANT and out is not None:
            self._send(out, "send after a GRANT")
        elif p.kind == RESEND and out is not None:
            out.touched = time.monotonic()
            self._resend(out, p.offset, p.ctrl_length)
            self._send(out, "send after a RESEND")
        elif p.kind == UNKNOWN and call is not None:
            self._restart(call)

    def _prune(self) -> None:
        """Forget responses and half-received requests whose RPC the data path removed
        (ACKed, reclaimed by its timer, aborted) and that saw no packet for PRUNE_IDLE:
        packets of the same key may still come, and then the data path has a new RPC for
        them (forgetting their earlier bytes here would leave the two disagreeing)."""
        now = time.monotonic()
        with self._lock:
            keys = [k for k, out in self._serving.items() if now - out.touched > PRUNE_IDLE]
            keys += [k for k, inbound in self._requests.items()
                     if now - inbound.touched > PRUNE_IDLE]
            keys += [k for k, at in self._handed.items() if now - at > PRUNE_IDLE]
        rpcs = self.raw_maps["rpcs"]
        gone = [k for k in keys if rpcs.lookup(self._raw_key(k)) is None]
        with self._lock:
            for k in gone:
                self._serving.pop(k, None)
                self._requests.pop(k, None)
                self._handed.pop(k, None)

    def _watch(self, now: float) -> None:
        """The data path starts each RPC's timer at its first packet, and the kernel can
        fail to (it allocates the timer's state then, without waiting; in long incast runs
        4 to 21 of 12,000 RPCs were left without one). Its next packets try again, but a
        message whose packets all came at once has none to come: without the timer's
        RESEND nothing more would arrive. For the messages idle for WATCH_IDLE whose RPC
        has no timer yet, ask gen to start it (an ARM request)."""
        with self._lock:
            idle = [k for k, inbound in self._requests.items()
                    if now - inbound.touched > WATCH_IDLE]
            idle += [k for k, call in self._calls.items()
                     if now - (call.inbound or call.out).touched > WATCH_IDLE]
        asked = False
        for key in idle:
            rpc = self.maps["rpcs"].get(self._map_key(key))
            if isinstance(rpc, dict) and not rpc["armed"]:
                asked |= self._queue_ctrl(key, wire.ARM)
        if asked:
            self.pump.ask()

    def _look_for_losses(self, now: float, quiet: bool) -> None:
        """The data path marks a DATA packet received before the kernel puts it on the
        AF_XDP socket's ring; when the ring is full the kernel drops it there, and the
        packet is lost to this library while the data path takes its copies as duplicates.
        The socket counts such losses: for a while after they grew, look for messages
        missing packets the data path has (`_repair`). Only when `quiet`, with nothing on
        the ring and nothing taken off it waiting to be handled: a frame still there looks
        lost too, and a low-priority message's frames can wait longer than REPAIR_IDLE
        behind higher ones. Repairing those had the senders send them again and again
        (110 million duplicates in one incast run, which never finished); while it is not
        quiet, the time to look is kept open."""
        stats = self.xsk.statistics()
        lost = stats.rx_dropped + stats.rx_ring_full + stats.rx_fill_ring_empty_descs
        if lost != self._lost_frames:
            self._lost_frames = lost
            self._repair_until = now + REPAIR_SPAN
        if now < self._repair_until:
            if quiet:
                self._repair(now)
            else:
                self._repair_until = max(self._repair_until, now + 2 * REPAIR_LOOK)

    def _repair(self, now: float) -> None:
        """For each message arriving whose packets the data path took and this library does
        not have, once it saw nothing for REPAIR_IDLE: a REPAIR for each run of them, which
        gen turns into a RESEND once it has cleared their bits (`forget_lost` in the
        transport), so that the packets sent again are taken."""
        asked = False
        seen: set[Key] = set()
        for mkey, rpc in self.maps["rpcs"].items():
            if rpc["state"] not in (wire.CLIENT_IN, wire.SERVER_IN, wire.SERVER_BUSY) or \
                    not rpc["in_length"]:
                continue
            key: Key = (mkey["id"], wire.ip_str(mkey["peer"]), mkey["peer_port"],
                        mkey["local_port"])
            inbound = self._inbound_of(key, rpc["in_length"], now)
            if inbound is None or now - inbound.touched < REPAIR_IDLE:
                seen.add(key)
                continue
            runs = lost_runs(rpc["bitmap"], inbound.have, rpc["in_length"])[:MAX_RESEND_RUNS]
            queued = [self._queue_ctrl(key, wire.REPAIR, offset, size) for offset, size in runs]
            if any(queued):
                inbound.touched = now        # asked: not again before REPAIR_IDLE
                asked = True
        with self._lock:
            for key in [k for k in self._unseen if k not in seen]:
                del self._unseen[key]
        if asked:
            self.pump.ask()

    def _inbound_of(self, key: Key, length: int, now: float) -> _Inbound | None:
        """This library's copy of the message of `key` the data path has packets of: made
        empty (all of them lost) when it has none and the data path's has been there for
        REPAIR_IDLE; None when there is nothing to repair (a request already handed to the
        application, a call that ended, a port nobody serves) or not yet."""
        server = key[0] & 1 == 1
        call: _Call | None = None
        with self._lock:
            if server:
                if key in self._handed or key in self._serving or key[3] not in self._servers:
                    return None
                inbound = self._requests.get(key)
            else:
                call = self._calls.get(key)
                if call is None:
                    return None
                inbound = call.inbound
            if inbound is not None:
                return inbound if inbound.length == length else None
            first = self._unseen.setdefault(key, now)
            if now - first < REPAIR_IDLE:
                return None
            del self._unseen[key]
            inbound = _Inbound(length)
            inbound.touched = first
            if call is not None:
                call.inbound = inbound
            else:
                self._requests[key] = inbound
            return inbound

    def _request_data(self, key: Key, length: int, offset: int, payload: memoryview) -> None:
        with self._lock:
            if key in self._handed:
                return                   # a packet a REPAIR asked for, already here after all
            server = self._servers.get(key[3])
            inbound = self._requests.get(key)
            if inbound is None and server is not None:
                inbound = self._requests[key] = _Inbound(length)
        if server is None or inbound is None:
            return
        if inbound.place(length, offset, payload):
            with self._lock:
                self._requests.pop(key, None)
                self._handed[key] = time.monotonic()
            server.arrived(Request(key[1], key[2], key[3], key[0] & ~1, bytes(inbound.buffer)))

    def _response_data(self, key: Key, length: int, offset: int, payload: memoryview) -> None:
        with self._lock:
            call = self._calls.get(key)
        if call is None:
            return
        if call.inbound is None:
            call.inbound = _Inbound(length)
        if call.inbound.place(length, offset, payload):
            with self._lock:
                self._calls.pop(key, None)
            self.raw_maps["rpcs"].delete(self._raw_key(key))
            self._control(ACK, key, from_client=True)
            if not call.future.done():
                call.future.set_result(bytes(call.inbound.buffer))

    def _restart(self, call: _Call) -> None:
        """The server does not know the RPC (it lost it, or restarted): send it again. The
        UNKNOWNs that answer RESENDs sent before the restart are ignored."""
        now = time.monotonic()
        if now - call.restarted < RESTART_GUARD:
            return
        call.restarted = now
        call.restarts += 1
        if call.restarts > MAX_RESTARTS:
            self._fail(call, errno.ECONNABORTED, "the server keeps forgetting the RPC")
            return
        self.maps["rpcs"].delete(self._map_key(call.key))
        call.inbound = None
        with call.out.lock:
            call.out.next = 0
            call.out.granted = min(call.out.length, self.rtt_bytes)
        self._send(call.out, "send a request again")

    def _event(self, e: dict[str, Any]) -> None:
        key: Key = (e["id"], wire.ip_str(e["peer"]), e["peer_port"], e["local_port"])
        if e["what"] == wire.EVENT_STALLED:
            self._ask_again(key, e["granted"], e["length"])
            return
        if e["what"] != wire.EVENT_ABORTED:
            return
        with self._lock:
            call = self._calls.get(key)
        # A server's half-received request keeps its bytes: a client that is still there
        # sends again, and the data path takes the packets as a new RPC of the same key.
        if call is not None:
            self._fail(call, errno.ECONNABORTED, f"no answer from {key[1]}:{key[2]} after "
                       "the data path's RESENDs")

    def _ask_again(self, key: Key, granted: int, length: int) -> None:
        """A message stopped arriving (the data path's timer says): RESEND for every run of
        packets missing below what we granted, through the data path's gen (which counts
        them), at most MAX_RESEND_RUNS at a time."""
        limit = min(granted, length)
        rpc = self.maps["rpcs"].get(self._map_key(key))
        if not isinstance(rpc, dict):
            return                           # gone meanwhile
        # The data path's bitmap says what it still takes: after an abort a new RPC of the
        # same key starts with an empty one, whatever the library kept.
        runs = missing_runs(rpc["bitmap"], limit, length)[:MAX_RESEND_RUNS]
        queued = [self._queue_ctrl(key, wire.RESEND, offset, size) for offset, size in runs]
        if any(queued):                      # (every run queued, not the first alone)
            self.pump.ask()

    def _queue_ctrl(self, key: Key, kind: int, offset: int = 0, length: int = 0) -> bool:
        """Queue a request for gen (RESEND, REPAIR, ARM) about the RPC of `key`; False when
        the queue is full (the data path's timer, or the next look, asks again: a full
        queue must not stop the thread that calls this)."""
        try:
            self.maps["ctrl"].push({"id": key[0], "peer": wire.ip_int(key[1]),
                                    "local_port": key[3], "peer_port": key[2], "kind": kind,
                                    "offset": offset, "length": length, "priority": 7})
        except BpfError as exc:
            if exc.errno != errno.E2BIG:
                raise
            return False
        return True

    def _fail(self, call: _Call, code: int, why: str) -> None:
        with self._lock:
            self._calls.pop(call.key, None)
        self.maps["rpcs"].delete(self._map_key(call.key))
        if not call.future.done():
            call.future.set_exception(_error(code, why))


class Client:
    """Sends requests and waits for responses, many at once."""

    def __init__(self, stack: HomaStack, port: int) -> None:
        self.stack = stack
        self.port = port

    def call_async(self, address: tuple[str, int], request: bytes) -> Future[bytes]:
        """Send `request` to the server at `address`; the future resolves to the response
        (or raises ConnectionAbortedError when the data path gave up on the server)."""
        _check_size(request, "request")
        if self.stack.error is not None:
            raise _error(errno.EIO, f"the Homa stack failed: {self.stack.error}")
        peer, peer_port = address
        key: Key = (next(self.stack._ids), peer, peer_port, self.port)
        out = self.stack._outbound(key, request, from_client=True)
        call = _Call(key, request, Future(), out)
        with self.stack._lock:
            self.stack._calls[key] = call
        try:
            self.stack._send(out, f"call {peer}:{peer_port}")
        except BaseException:
            self.stack._fail(call, errno.EPROTO, "the request could not be sent")
            raise
        return call.future

    def call(self, address: tuple[str, int], request: bytes,
             timeout: float | None = 5.0) -> bytes:
        """Send `request` and wait for the response. TimeoutError after `timeout` seconds
        (the RPC is abandoned); ConnectionAbortedError when the data path gave up."""
        future = self.call_async(address, request)
        try:
            return future.result(timeout)
        except TimeoutError:
            self.abandon(future, errno.ETIMEDOUT)
            raise _error(errno.ETIMEDOUT, f"call {address[0]}:{address[1]}: no response "
                         f"within {timeout} s") from None

    def abandon(self, future: Future[bytes], code: int = errno.ECANCELED) -> None:
        """Give up the call of `future` (its RPC leaves the data path; the future fails with
        `code`), if it is still going."""
        with self.stack._lock:
            call = next((c for c in self.stack._calls.values() if c.future is future), None)
        if call is not None:
            self.stack._fail(call, code, "abandoned")


class Server(Handled):
    """Receives requests on a port and answers them.

    Without a handler, an application thread takes each request with `receive` and answers
    it with `reply`. With `handler`, the library's receiving thread calls it with each
    request as its last packet comes in, and sends what it returns as the response (None:
    no response now; the application replies later, from any thread). That saves the
    hand-off to an application thread, which waits for the interpreter lock behind the
    batch of packets being handled (2.5 ms at p50, 20 ms at p99 in docs/homa.md's incast);
    eRPC runs its request handlers the same way. While a handler runs, no packet of this
    host is handled: a handler that takes long should return None and reply from its own
    thread. What a handler that raises does: `etran.homa.handling`."""

    # a response that cannot be sent concerns its request alone (the RPC is gone, or the
    # response is too long): the receiving thread goes on
    REQUEST_ERRORS = (OSError, ValueError)

    def __init__(self, stack: HomaStack, port: int, handler: Handler | None = None) -> None:
        self.stack = stack
        self.port = port
        self._init_handler(handler)
        self._queue: queue.SimpleQueue[Request] = queue.SimpleQueue()   # (put is C-level)

    def arrived(self, request: Request) -> None:
        """A whole request came in (the library's receiving thread)."""
        if self.handler is None:
            self._queue.put(request)
        else:
            self._answer(request)

    def receive(self, timeout: float | None = None) -> Request:
        """The next whole request; TimeoutError when none came within `timeout`."""
        self._refuse_receive()
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            raise _error(errno.ETIMEDOUT, f"receive on port {self.port}") from None

    def reply(self, request: Request, response: bytes) -> None:
        """Send `response` to the client of `request`."""
        _check_size(response, "response")
        key = request.key
        out = self.stack._outbound(key, response, from_client=False)
        with self.stack._lock:
            self.stack._serving[key] = out
        self.stack._send(out, f"reply to {request.peer}:{request.peer_port}")

    def close(self) -> None:
        with self.stack._lock:
            self.stack._servers.pop(self.port, None)
        self.stack.maps["ports"].delete(self.port)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def lost_runs(bitmap: list[int], have: list[bool], length: int) -> list[tuple[int, int]]:
    """(offset, bytes) of each run of packets the data path's bitmap marks received and
    `have` (the library's) does not, none crossing a bitmap word (what `forget_lost` in
    the transport takes)."""
    return _runs(lambda i: bool(bitmap[i >> 6] >> (i & 63) & 1) and not have[i], length,
                 length, split_words=True)


def missing_runs(bitmap: list[int], limit: int, length: int) -> list[tuple[int, int]]:
    """(offset, bytes) of each run of packets below `limit` whose bit is clear in the data
    path's receive bitmap (one bit per packet, 64 to a word)."""
    return _runs(lambda i: not bitmap[i >> 6] >> (i & 63) & 1, min(limit, length), length)


def _runs(wanted: Callable[[int], bool], limit: int, length: int,
          split_words: bool = False) -> list[tuple[int, int]]:
    """(offset, bytes) of each run of the packets below `limit` of a `length`-byte message
    whose index `wanted` says; with `split_words`, a run ends at each bitmap word too."""
    runs: list[tuple[int, int]] = []
    for index in range(-(-limit // wire.PAYLOAD)):
        if wanted(index):
            offset = index * wire.PAYLOAD
            size = min(wire.PAYLOAD, length - offset)
            if runs and runs[-1][0] + runs[-1][1] == offset and \
                    not (split_words and index & 63 == 0):
                runs[-1] = (runs[-1][0], runs[-1][1] + size)
            else:
                runs.append((offset, size))
    return runs


def _check_size(message: bytes, what: str) -> None:
    if not 1 <= len(message) <= wire.MAX_MESSAGE:
        raise ValueError(f"a {what} is 1 to {wire.MAX_MESSAGE:,} bytes, not {len(message):,}")


__all__ = ["Client", "HomaStack", "Request", "Server"]

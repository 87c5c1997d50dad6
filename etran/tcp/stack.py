"""The TCP control plane of one host, and the sockets applications hold.

`TcpStack(topology, host)` loads the data path (`etran/transports/tcp.py`) on the host,
attaches its ingress, opens the AF_XDP socket its ingress delivers to, sets up egress (by
default natively, on the far end of the stack's own veth pair: etran.runtime.native), and
runs the gen pump (ACKs whenever ingress asks), the egress pump (go-backs a timer asks for)
and a dispatcher (every frame the socket receives goes to the connection or listener it
belongs to, while no application thread waiting in `recv` takes the frames itself). It does
what is not per-segment work: the handshake in both directions (MSS, window scaling,
timestamps and SACK-permitted offered and taken, ECN), entering and removing connections
in the data path's maps, RST in both directions, and the close.

`TcpSocket` has the shape of a socket: `send`/`sendall`/`recv`/`shutdown`/`close`, timeouts,
context manager, OSError subclasses with errno. It keeps what it sent until the data path's
`snd_una` passes it, and sends segments through the egress program in order, each with the
sequence number it means: egress sends it only at `snd_nxt` and within the peer's window,
and otherwise hands it back with a notice (wait for the window; or resume from a sequence
number, after the data path went back N on a timeout or three duplicate ACKs). Go-backs the
timer starts while the application is not sending reach the socket as notices through the
egress pump, and a worker thread resends.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import random
import select
import socket as _socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from etran.abi import XDP_REDIRECT, XDP_TX
from etran.ir import codec
from etran.runtime.afxdp import XskSocket
from etran.runtime.busypoll import spin_until
from etran.runtime.errors import EtranRuntimeError
from etran.runtime.hooks import FALLBACK_FLAG_INTERVAL, Egress, EgressPump, Gen, GenPump
from etran.runtime.loader import Program, load_object
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
from etran.tcp import segments as sg
from etran.tcp.segments import (
    ACK,
    CWR,
    ECE,
    FIN,
    NOTICE_RESUME,
    NOTICE_WINDOW,
    PSH,
    RST,
    SYN,
    Segment,
)

TRANSPORT = Path(__file__).resolve().parents[1] / "transports" / "tcp.py"
_READ = struct.Struct("=I")              # the data path's `Read`: consumed, host order
_IP_LEN = struct.Struct("!H")            # a frame's IPv4 total length, at 16
_SEQ = struct.Struct("!I")               # its TCP sequence number, at 38
ESTABLISHED, PEER_CLOSED = 1, 2          # Conn.state in the data path
INIT_CWND = 10                           # segments (RFC 6928), as the data path expects
DCTCP_INIT_ALPHA = 1024
SYN_RETRIES = 5
SYN_TIMEOUT = 0.2                        # first SYN retransmission; doubles
WINDOW_POLL = 0.0002                     # how soon a sender looks at a full window again,
WINDOW_POLL_MAX = 0.002                  # doubling up to this while it stays full
ROOM_WATCH = 0.1                         # how long after a full window a native sender
                                         # reads the window before each batch
TIME_WAIT = 0.05                         # how long a closed connection's entry lingers
LINGER = 2.0                             # how long a close may take (the socket's timeout
                                         # when it has one) before the connection is reset
LINGER_POLL = 0.002                      # how often closing connections are looked at
WINDOW_UPDATE = 16384                    # consumed bytes that earn the peer a window update
BATCH = 32                               # segments handed to egress per entry into it
RING_SIZE = 2048                         # frames the AF_XDP socket's receive ring holds
RING_TELL = 32                           # frames taken between two writes of `taken`
# How long a thread waiting for data polls the AF_XDP ring before it sleeps in poll(2): an
# idle vCPU of a virtual machine can take tens of microseconds to wake for a frame, longer
# than a round trip here (docs/tcp.md, "Busy polling")
BUSY_POLL = 0.0005
# How often the dispatcher looks for connections with data in flight and no retransmission
# timer (`_watch_timers`): the kernel fails to start a timer at times, and when every
# segment of that data is then lost, no ACK comes to start it again
TIMER_WATCH = 0.1
RECEIVE_BUFFER = 65535                   # bytes a connection may hold unread, by default
MAX_RECEIVE_BUFFER = 2 << 20             # within what the AF_XDP socket's 2,048 receive frames hold
MAX_WSCALE = 14                          # RFC 7323
# What a stack that died left in a run's maps (cleared by the next stack on the host)
DEAD_STACK_STATE = ("conns", "ports", "reads", "delayed_acks", "acks", "go_backs", "pending",
                    "wake", "wake_tx")
TRIM_EVERY = 32                          # segments sent between two looks at snd_una (`_trim`)
APP_GRACE = 0.01                         # the dispatcher leaves the frames this long to an
                                         # application thread that took them last
# How often the dispatcher looks whether an application thread still takes the frames. A
# look wakes its thread, which then takes the interpreter lock from the application thread
# that busy-polls: every 5 ms, that made a 64-byte round trip's p99 about 10% longer
# (docs/tcp.md, "The stack's own threads"). Frames that arrive after the application thread
# left, and that it does not come back for, wait up to this long.
DISPATCH_LOOK = 0.05


def ts_clock() -> int:
    """The timestamps' clock, the data path's (`ts_clock` in the transport): CLOCK_MONOTONIC
    in units of 2**20 ns."""
    return (time.monotonic_ns() >> 20) & 0xFFFFFFFF


def _wscale_for(buffer: int) -> int:
    """The smallest window-scale shift that lets the window field say `buffer` bytes."""
    shift = 0
    while buffer >> shift > 0xFFFF:
        shift += 1
    return shift


def _check_buffer(receive_buffer: int) -> None:
    if not 1 <= receive_buffer <= MAX_RECEIVE_BUFFER:
        raise ValueError(f"receive_buffer is {receive_buffer:,} bytes: give 1 to "
                         f"{MAX_RECEIVE_BUFFER:,} (what the AF_XDP socket's frames hold)")


def _error(code: int, what: str) -> OSError:
    """The OSError the socket module would raise for `code`: ConnectionRefusedError for
    ECONNREFUSED, ConnectionResetError, TimeoutError, BrokenPipeError..., errno set."""
    return OSError(code, f"{os.strerror(code)}: {what}")


def _wire_key(key: Key) -> bytes:
    """A connection's peer address and ports as its segments carry them (bytes 26 to 38 of
    an Ethernet frame with a 20-byte IPv4 header: source address, source and destination
    ports)."""
    peer_ip, peer_port, local_port = key
    return _socket.inet_aton(peer_ip) + struct.pack("!HH", peer_port, local_port)


def _u32s(raw: bytes, offsets: tuple[int, ...]) -> tuple[int, ...]:
    """The u32 fields (the host's order) at `offsets` of a raw map entry."""
    return tuple(int.from_bytes(raw[at:at + 4], "little") for at in offsets)


def _transport(native_egress: bool = False) -> Any:
    """The data path, compiled once per process (`compiled_transport`)."""
    return compiled_transport(TRANSPORT, native_egress)


Key = tuple[str, int, int]               # (peer address, peer port, local port)


class TcpStack:
    """etran's TCP on host `host` of `topology`; close it (or `with`) before the topology.

    `TcpStack(topology, "a")` loads the data path and attaches its ingress itself;
    `TcpStack.in_run(record, "a")` uses the one `etran up etran/transports/tcp.py` loaded
    and pinned for host a (how `etran nc` runs inside a host's namespace). Either way one
    stack per host: it takes the interface's AF_XDP queue.

    `native_egress=True` runs egress natively on the far end of the stack's own veth pair
    (etran.runtime.native): segments leave through an AF_XDP socket, nothing leaves without
    passing `tcp_tx`, and what `tcp_tx` refuses comes back on that socket.

    `ring_size`: the frames the AF_XDP socket's receive ring holds. Ingress acknowledges
    data before the kernel puts it there, so it never lets more wait than seven eighths of
    the ring (`Taken` in the transport): beyond, data is refused as beyond the window, and
    the peer sends it again.

    `busy_poll`: seconds an application thread waiting in `recv` keeps looking at the
    AF_XDP ring, yielding its CPU between looks, before it sleeps in poll(2); 0 sleeps at
    once. Spinning costs CPU while a connection waits and saves the wake-up of an idle CPU
    on each arrival (docs/tcp.md, "Busy polling").
    """

    def __init__(self, topology: Topology, host: str, *, ecn: bool = True,
                 receive_buffer: int = RECEIVE_BUFFER, timestamps: bool = True,
                 sack: bool = True, native_egress: bool = True,
                 ring_size: int = RING_SIZE, busy_poll: float = BUSY_POLL) -> None:
        _check_buffer(receive_buffer)
        compiled = _transport(native_egress)
        me = topology.host(host)
        loaded = topology.own(load_object(compiled.elf, f"tcp_{host}"[:15]), host)
        topology.attach(host, loaded.programs["tcp_rx"])
        self._start(me, {h.ip: h.mac_bytes for h in topology.hosts.values()}, loaded.maps,
                    loaded.programs, compiled.program, ecn, owned=[Detacher(topology, host)],
                    receive_buffer=receive_buffer, timestamps=timestamps, sack=sack,
                    native_egress=native_egress, ring_size=ring_size, busy_poll=busy_poll)

    @classmethod
    def in_run(cls, record: Any, host: str, *, ecn: bool = True,
               receive_buffer: int = RECEIVE_BUFFER, timestamps: bool = True,
               sack: bool = True, native_egress: bool = True,
               busy_poll: float = BUSY_POLL) -> TcpStack:
        """The stack of host `host` of a run `etran up` started with the TCP transport:
        its pinned maps and programs, its interface, its neighbours. With `native_egress`
        (the default) the native build's `tcp_tx` that `etran up` pinned beside the maps
        runs on the stack's veth pair (a run without it: built and loaded here on the run's
        maps)."""
        _check_buffer(receive_buffer)
        pinned = open_pinned_host(record, host, _transport().program, ("tcp_tx", "tcp_ack"))
        try:
            # One stack per host (it takes the AF_XDP queue), so whatever the maps still
            # hold is a dead stack's: a process killed mid-transfer. Its connections go, so
            # the peer's next segment reaches the host's own TCP, which answers with a RST.
            for name in DEAD_STACK_STATE:
                pinned.maps[name].clear()
        except BaseException:
            close_all(pinned.owned)
            raise
        if native_egress:
            use_native_egress(pinned, lambda: _transport(True).elf, "tcp_tx", f"tcp_{host}_tx")
        stack = cls.__new__(cls)
        stack._start(pinned.host, pinned.neighbours, pinned.maps, pinned.programs,
                     _transport().program, ecn, owned=pinned.owned,
                     receive_buffer=receive_buffer, timestamps=timestamps, sack=sack,
                     native_egress=native_egress, busy_poll=busy_poll)
        return stack

    def _start(self, me: Host, neighbours: dict[str, bytes], maps: dict[str, Any],
               programs: dict[str, Program], program: Any, ecn: bool,
               owned: list[Any], receive_buffer: int, timestamps: bool, sack: bool,
               native_egress: bool = False, ring_size: int = RING_SIZE,
               busy_poll: float = BUSY_POLL) -> None:
        self.host = me
        self.busy_poll = busy_poll
        self.ecn = ecn      # ask for ECN on connect, accept it on listen (DCTCP needs it)
        # What a connection may hold unread (the window it advertises), and the window-scale
        # shift offered in every SYN and SYN-ACK (0 for a buffer of 64 KiB or less: "I scale
        # the peer's windows, mine are not scaled")
        self.receive_buffer = receive_buffer
        self.wscale = _wscale_for(receive_buffer)
        self.timestamps = timestamps    # offer RFC 7323 timestamps, accept them
        self.sack = sack                # offer SACK (RFC 2018): our ACKs report what is held
        self.neighbours = neighbours
        self._closers: list[Any] = list(owned)
        try:
            self.raw_maps = maps
            self.maps: dict[str, TypedMap] = {m.name: TypedMap(maps[m.name], m)
                                              for m in program.maps if m.name in maps}
            self._program = program
            self._trace_reader: RingBufferReader | None = None
            self.xsk = XskSocket(self.host.interface, ring_size=ring_size)
            self._closers.insert(0, self.xsk)
            # Frames waiting on the socket's ring, as ingress counts them: at most seven
            # eighths of the ring (`taken` told every RING_TELL frames)
            self._ring = RingCount(maps["handed"], maps["taken"], self.xsk,
                                   tell_every=RING_TELL,
                                   limit=self.xsk.rx.size - self.xsk.rx.size // 8)
            self.xsk.register(maps["sockets"])
            self.native: NativeEgress | None = None
            self.egress: Egress | NativeEgress
            if native_egress:
                self.egress = self.native = NativeEgress(maps, programs["tcp_tx"],
                                                         self.host.interface)
            else:
                self.egress = Egress(programs["tcp_tx"], self.host.interface)
            self._closers.insert(0, self.egress)
            self.gen = Gen(programs["tcp_ack"], self.host.interface)
            self._closers.insert(0, self.gen)
            self.port = HostPort(self.host.interface)
            self._closers.insert(0, self.port)
            self.pump = GenPump(self.gen, ring=maps["wake_ring"], flag=(maps["wake"], bytes(4)),
                                interval=FALLBACK_FLAG_INTERVAL)
            self._closers.insert(0, Stopper(self.pump))
            # where `TcpSocket._room` reads snd_una, snd_nxt, snd_wnd, cwnd and mss (u32s)
            conn = program.map("conns").value
            self._room_fields = tuple(conn.field(f).offset for f in
                                      ("snd_una", "snd_nxt", "snd_wnd", "cwnd", "mss"))
            # where `_consumed` reads what our last ACK said (u32s)
            self._told_fields = tuple(conn.field(f).offset for f in
                                      ("rcv_nxt", "last_ack", "last_wnd"))
            self._armed_at = conn.field("rto_armed").offset     # (a bool: one byte)
            self.egress_pump = EgressPump(self.egress, sg.timeout_frame(),
                                          ring=maps["wake_tx_ring"],
                                          flag=(maps["wake_tx"], bytes(4)),
                                          interval=FALLBACK_FLAG_INTERVAL)
            self._closers.insert(0, Stopper(self.egress_pump))
        except BaseException:
            self._close_parts()
            raise
        self._lock = threading.Lock()
        self._conns: dict[Key, TcpSocket] = {}
        # the same connections by the bytes a segment of theirs carries at 26-38 (the peer's
        # address and both ports): `_drain`'s way to them without parsing
        self._fast: dict[bytes, TcpSocket] = {}
        self._ip_bytes = _socket.inet_aton(me.ip)
        # sockets their application closed, kept until the close completes: (deadline,
        # when TIME-WAIT ends once it has)
        self._lingering: dict[TcpSocket, tuple[float, float | None]] = {}
        self._listeners: dict[int, TcpListener] = {}
        self._stop = threading.Event()
        # Who takes frames off the AF_XDP socket: whoever holds `_rx_lock`. An application
        # thread waiting in `recv` takes it and polls the socket itself (`_serve_until`), so
        # its data wakes it directly; the dispatcher thread does it only while no
        # application thread is, or was a moment ago (APP_GRACE), for the others and for the
        # rest. Two threads polling the socket would both wake for each frame, and the one
        # that does not take it would still cost the other its CPU and the interpreter lock.
        self._rx_lock = threading.Lock()
        # connections seen with data in flight and no timer: their snd_una then
        # (`_watch_timers`); how many times gen was asked to start one
        self._unarmed: dict[TcpSocket, int] = {}
        self.timers_asked = 0
        self._app_polling = False
        self._app_left = 0.0
        # threads in `recv` waiting for another to deliver (not taking frames themselves):
        # when the one taking them leaves, the dispatcher takes over at once for them
        self._rx_waiters = 0
        self._waiters_lock = threading.Lock()
        self._dispatcher_wake = threading.Event()
        self._dispatcher_polling = False
        self._nudge = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        # what an application thread taking the frames polls (one at a time: `_rx_lock`)
        self._app_poller = select.poll()
        self._app_poller.register(self.xsk.fileno(), select.POLLIN)
        self._app_poller.register(self.egress.wakeup_fd(), select.POLLIN)
        self.error: BaseException | None = None
        self._resends: queue.Queue[TcpSocket | None] = queue.Queue()
        self._thread = threading.Thread(target=self._dispatch, name=f"etran-tcp-{me.name}",
                                        daemon=True)
        self._thread.start()
        self._resender = threading.Thread(target=self._resend, name=f"etran-tcp-tx-{me.name}",
                                          daemon=True)
        self._resender.start()

    # ---------------------------------------------------------------- applications
    def connect(self, address: tuple[str, int], timeout: float | None = 5.0) -> TcpSocket:
        """Active open to `address`; raises ConnectionRefusedError (ECONNREFUSED) on a RST,
        TimeoutError (ETIMEDOUT) when no SYN-ACK comes."""
        peer_ip, peer_port = address
        local_port = self._free_port()
        sock = TcpSocket(self, (peer_ip, peer_port, local_port), timeout)
        sock._iss = random.getrandbits(32)
        sock._base = (sock._iss + 1) & 0xFFFFFFFF
        with self._lock:
            self._conns[sock.key] = sock
        self.maps["ports"][local_port] = {"owned": 1}
        try:
            wait = SYN_TIMEOUT
            for _ in range(SYN_RETRIES):
                ts = (ts_clock(), 0) if self.timestamps else None
                self._send_control(sock.key, seq=sock._iss,
                                   flags=SYN | (ECE | CWR if self.ecn else 0),
                                   options=sg.syn_options(self.wscale, ts=ts, sack=self.sack))
                if sock._handshake.wait(wait):
                    break
                wait *= 2
            if sock._error is not None:
                raise _error(sock._error, f"connect to {peer_ip}:{peer_port}")
            if not sock._handshake.is_set():
                raise _error(errno.ETIMEDOUT, f"connect to {peer_ip}:{peer_port}: no answer "
                               f"to {SYN_RETRIES} SYNs")
        except BaseException:
            self._forget(sock.key)
            raise
        return sock

    def listen(self, port: int, backlog: int = 16) -> TcpListener:
        """Passive open on `port` of this host's address."""
        with self._lock:
            if port in self._listeners:
                raise _error(errno.EADDRINUSE, f"listen on port {port}")
            listener = TcpListener(self, port, backlog)
            self._listeners[port] = listener
        self.maps["ports"][port] = {"owned": 1}
        return listener

    def connection(self, sock: TcpSocket) -> dict[str, Any] | None:
        """The data path's entry for `sock` (state, sequence numbers, counters)."""
        got = self.maps["conns"].get(self._map_key(sock.key))
        return got if isinstance(got, dict) else None

    def trace(self) -> list[dict[str, int]]:
        """The congestion-control records written since the last call, oldest first: one per
        ACK that acknowledged new data (snd_una, snd_nxt, segments acked, ECE, and DCTCP's
        alpha, cwnd and ssthresh after it). The ring holds 1 MiB; records past that are lost
        until it is read."""
        if self._trace_reader is None:
            self._trace_reader = RingBufferReader(self.raw_maps["trace"])
            self._closers.insert(0, self._trace_reader)
        layout = self._program.map("trace").value
        return [codec.decode(layout, raw) for raw in self._trace_reader.drain()]

    def counters(self) -> dict[str, int]:
        """Segments ingress refused (summed over CPUs)."""
        per_cpu = self.maps["counters"].get(0) or []
        out: dict[str, int] = {}
        for entry in per_cpu:
            for name, value in entry.items():
                out[name] = out.get(name, 0) + value
        return out

    def close(self) -> None:
        """Wait for the closes applications left to the stack to complete (their deadline at
        most; not their TIME-WAIT), reset every other connection, stop the threads, release
        sockets and namespace."""
        while self._resender.is_alive() and self.error is None:
            with self._lock:
                waiting = [(sock, deadline) for sock, (deadline, quiet_at)
                           in self._lingering.items() if quiet_at is None and not sock._gone]
            if not waiting or all(sock._close_complete() for sock, _ in waiting) or \
                    time.monotonic() > max(deadline for _, deadline in waiting):
                break
            time.sleep(0.002)
        with self._lock:
            lingering = list(self._lingering)
        for sock in lingering:
            if sock._close_complete():
                self._forget(sock.key)        # closed both ways: nothing to reset
        for sock in list(self._conns.values()):
            sock.abort()
        self._stop.set()
        self._dispatcher_wake.set()
        self._resends.put(None)
        for thread in (self._thread, self._resender):
            if thread.is_alive():
                thread.join()
        self._close_parts()

    def _close_parts(self) -> None:
        parts, self._closers = self._closers, []
        close_all(parts)

    def __enter__(self) -> TcpStack:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ---------------------------------------------------------------- internals
    def _free_port(self) -> int:
        with self._lock:
            used = {k[2] for k in self._conns} | set(self._listeners)
        while True:
            port = random.randint(32768, 60999)
            if port not in used:
                return port

    def _map_key(self, key: Key) -> dict[str, int]:
        return {"peer_ip": sg.ip_int(key[0]), "peer_port": key[1], "local_port": key[2]}

    def _send_control(self, key: Key, *, seq: int, ack: int = 0, flags: int,
                      options: bytes = b"", window: int = sg.WINDOW) -> None:
        peer_ip, peer_port, local_port = key
        self.port.transmit(sg.build(
            src_mac=self.host.mac_bytes, dst_mac=self._mac(peer_ip), src=self.host.ip,
            dst=peer_ip, sport=local_port, dport=peer_port, seq=seq, ack=ack, flags=flags,
            window=window, options=options))

    def _mac(self, ip: str) -> bytes:
        try:
            return self.neighbours[ip]
        except KeyError:
            raise _error(errno.EHOSTUNREACH, f"{ip} is not a host of this topology") from None

    def _negotiate(self, sock: TcpSocket, seg: Segment) -> None:
        """What the peer's SYN or SYN-ACK `seg` agreed to (RFC 7323), each on only when both
        SYNs carried it. Window scaling: each side shifts the windows it sends by its own
        shift; off, a buffer over 64 KiB cannot be advertised and the connection holds at
        most 65,535 bytes. Timestamps: in every segment after, both ways (12 bytes of each
        segment's room, taken from the payload as RFC 6691 says)."""
        sock._mss = min(seg.mss or 536, sg.MSS)
        if seg.wscale is None:
            sock._wscale, sock._rcv_buf = (0, 0), min(self.receive_buffer, 0xFFFF)
        else:
            sock._wscale = (min(seg.wscale, MAX_WSCALE), self.wscale)
            sock._rcv_buf = self.receive_buffer
        sock._ts_recent = seg.ts[0] if seg.ts is not None and self.timestamps else None
        sock._sack = self.sack and seg.sack_perm
        if sock._ts_recent is not None:
            sock._mss -= sg.TS_LEN

    def _install(self, sock: TcpSocket, *, snd_una: int, snd_nxt: int, rcv_nxt: int,
                 window: int, peer_mac: bytes, ecn: bool) -> None:
        peer_ip, peer_port, local_port = sock.key
        sock.ecn = ecn
        self.maps["reads"][self._map_key(sock.key)] = {"consumed": rcv_nxt & 0xFFFFFFFF}
        self.maps["delayed_acks"][self._map_key(sock.key)] = {}
        self._fast[_wire_key(sock.key)] = sock
        self.maps["conns"][self._map_key(sock.key)] = {
            "state": ESTABLISHED, "snd_una": snd_una & 0xFFFFFFFF,
            "snd_nxt": snd_nxt & 0xFFFFFFFF, "snd_wnd": window, "rcv_nxt": rcv_nxt & 0xFFFFFFFF,
            "local_ip": sg.ip_int(self.host.ip), "local_port": local_port,
            "peer_port": peer_port, "peer_ip": sg.ip_int(peer_ip),
            "local_mac": {"octets": list(self.host.mac_bytes)},
            "peer_mac": {"octets": list(peer_mac)},
            "snd_wscale": sock._wscale[0], "rcv_wscale": sock._wscale[1],
            "rcv_buf": sock._rcv_buf, "ts_ok": sock._ts_recent is not None,
            "ts_recent": sock._ts_recent or 0, "sack_ok": sock._sack,
            "mss": sock._mss, "ecn_ok": ecn, "cwnd": INIT_CWND, "ssthresh": 0xFFFF,
            "alpha": DCTCP_INIT_ALPHA, "next_seq": snd_nxt & 0xFFFFFFFF,
            "cwr_end": snd_nxt & 0xFFFFFFFF, "snd_max": snd_nxt & 0xFFFFFFFF}

    def _forget(self, key: Key, *, keep_port: bool = False) -> None:
        with self._lock:
            sock = self._conns.pop(key, None)
            if sock is not None:
                sock._gone = True
                self._lingering.pop(sock, None)
                if self._fast.get(_wire_key(key)) is sock:
                    del self._fast[_wire_key(key)]
            listening = key[2] in self._listeners
        self.maps["conns"].delete(self._map_key(key))
        self.maps["reads"].delete(self._map_key(key))
        self.maps["delayed_acks"].delete(self._map_key(key))   # its timer with it
        if not keep_port and not listening:
            self.maps["ports"].delete(key[2])

    def _dispatch(self) -> None:
        poller = select.poll()
        poller.register(self.xsk.fileno(), select.POLLIN)
        poller.register(self.egress.wakeup_fd(), select.POLLIN)
        poller.register(self._nudge, select.POLLIN)
        try:
            with self.egress.entered():      # lives in the host: its sends enter nothing
                self._dispatch_loop(poller)
        except BaseException as exc:
            self._failed(exc)
        finally:
            os.close(self._nudge)

    def _dispatch_loop(self, poller: select.poll) -> None:
        watched = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - watched >= TIMER_WATCH:
                watched = time.monotonic()
                self._watch_timers()
            grace = APP_GRACE - (time.monotonic() - self._app_left)
            if self._app_polling or (grace > 0 and not self._rx_waiters):
                # an application thread takes the frames (or did a moment ago, and will
                # again): look again later, or when it leaves others waiting
                self._dispatcher_wake.wait(DISPATCH_LOOK if self._app_polling else grace)
                self._dispatcher_wake.clear()
                continue
            self._dispatcher_polling = True
            poller.poll(20)
            self._dispatcher_polling = False
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(self._nudge)
            if self._app_polling:
                continue
            with self._rx_lock:
                self._drain()

    def _watch_timers(self) -> None:
        """Have gen start the retransmission timer of each connection found twice in a row
        with the same data in flight and no timer. The data path starts it when a segment
        leaves and tries again on every ACK and segment, but `bpf_timer_start` fails at
        times (the kernel allocates the timer's state without waiting: docs/tcp.md): if
        every segment of the data in flight is then lost, nothing but the application's
        next send would recover it. Gen starts the timer when it takes an ACK request for
        the connection (the ACK itself is skipped when it would repeat the last one)."""
        with self._lock:
            socks = list(self._conns.values())
        unarmed: dict[TcpSocket, int] = {}
        asked = False
        for sock in socks:
            raw = sock._entry()
            if raw is None or raw[self._armed_at]:
                continue
            una, nxt = _u32s(raw, self._room_fields[:2])
            if una == nxt:
                continue
            unarmed[sock] = una
            if self._unarmed.get(sock) == una:
                try:
                    self.maps["acks"].push({**self._map_key(sock.key), "dup": 0})
                except EtranRuntimeError:
                    continue                # the queue is full: asked again next time
                self.timers_asked += 1
                asked = True
        self._unarmed = unarmed
        if asked:
            self.pump.ask()

    def _drain(self) -> None:
        """Take what waits on the AF_XDP socket and what egress returned, and hand it to
        the connections and listeners (the caller holds `_rx_lock`)."""
        took: set[TcpSocket] = set()
        now = time.monotonic()
        counted = self._ring.before_recv(now)
        frames = self.xsk.recv(64, timeout=0)
        self._ring.after_recv(counted, len(frames), now, empty=not frames)
        fast, me = self._fast, self._ip_bytes
        for frame in frames:
            # The common case without building a Segment: data (ACK, PSH; no SYN, FIN or
            # RST) of an established connection, in an IPv4 header without options
            sock = fast.get(frame[26:30] + frame[34:38]) if len(frame) >= 54 else None
            if sock is not None and frame[47] & 0x07 == 0 and frame[12:15] == b"\x08\x00\x45" \
                    and frame[23] == 6 and frame[30:34] == me and sock._handshake.is_set():
                at, end = 34 + (frame[46] >> 4) * 4, 14 + ((frame[16] << 8) | frame[17])
                if 54 <= at < end <= len(frame):
                    sock._data(int.from_bytes(frame[38:42], "big"), bytes(frame[at:end]))
                    took.add(sock)
                    continue
            seg = sg.parse(frame)
            if seg is not None and seg.dst == self.host.ip:
                sock = self._deliver(seg)
                if sock is not None and seg.payload:
                    took.add(sock)
        for sock in took:
            self._consumed(sock)
        if self.egress.returned_waiting():    # seldom: looked at without a lock first
            for frame in self.egress.take_returned(64):
                self._late_notice(sg.parse_notice(frame))

    def _failed(self, exc: BaseException) -> None:
        """Taking frames failed: every socket's calls raise it from now on (EIO)."""
        self.error = exc
        for sock in list(self._conns.values()):
            sock._fail(errno.EIO)

    def _late_notice(self, note: sg.Notice | None) -> None:
        """A notice no sender was waiting for: egress went back N (a timer's go-back), or, on
        the native path, refused a segment after its sender had moved on. The connection's
        sender then resends from where egress is (`_resends`)."""
        if note is None or note.why not in (NOTICE_RESUME, NOTICE_WINDOW):
            return
        with self._lock:
            sock = self._conns.get((note.peer, note.peer_port, note.local_port))
        if sock is not None:
            if note.why == NOTICE_WINDOW:
                sock._watch_room_until = time.monotonic() + ROOM_WATCH
            self._resends.put(sock)

    def _send_native(self, sock: TcpSocket, heads: list[bytearray], bodies: list[bytearray],
                     seqs: list[int]) -> tuple[int, int, bytes | None]:
        """`Egress.send_until_refused` on the native path: all the segments (`heads[i]` then
        `bodies[i]`, sequence number `seqs[i]`) go, and the notices `tcp_tx` returned
        (almost always there when `send` returns) say which was refused first: (how many
        went before it, XDP_REDIRECT, its notice), or (len(heads), XDP_TX, None). The
        refused segment's followers come back too, all stale, and are dropped here; every
        other notice (another connection's, or one of this connection's that no segment of
        this batch explains: a go-back, or a batch before this) goes where late notices go,
        so that no refusal is lost."""
        assert self.native is not None
        self.native.send_parts(zip(heads, bodies))
        if not self.native.returned_waiting():
            return len(heads), XDP_TX, None
        index: dict[int, int] | None = None
        first: tuple[int, bytes] | None = None
        for frame in self.native.take_returned(64):
            note = sg.parse_notice(frame)
            if note is None:
                continue
            at = None
            if (note.peer, note.peer_port, note.local_port) == sock.key:
                if index is None:
                    index = {seq: i for i, seq in enumerate(seqs)}
                at = index.get(_SEQ.unpack_from(frame, 38)[0])
            if at is None:
                self._late_notice(note)
            elif first is None or at < first[0]:
                first = (at, frame)
        if first is None:
            return len(heads), XDP_TX, None
        return first[0], XDP_REDIRECT, first[1]

    def _serve_until(self, ready: Callable[[], object], timeout: float | None) -> bool | None:
        """Wait for `ready()` in the calling (application) thread by polling the AF_XDP
        socket and taking its frames here: one wake-up from the kernel to the thread that
        wants the data, instead of one to the dispatcher and a second, through a condition,
        to the application (about 50 us of a 64-byte round trip). Returns whether `ready()`
        held in time, or None when another thread is taking the frames already: the caller
        then waits on its condition for that thread to deliver."""
        if not self._rx_lock.acquire(timeout=0.001):
            return None
        self._app_polling = True
        if self._dispatcher_polling:
            os.eventfd_write(self._nudge, 1)     # out of its poll, before a frame wakes it
        try:
            poller = self._app_poller
            deadline = None if timeout is None else time.monotonic() + timeout
            spin = self.busy_poll > 0
            while True:
                try:
                    self._drain()
                except BaseException as exc:
                    self._failed(exc)
                    raise
                if ready():
                    return True
                if self._stop.is_set():
                    return False
                wait = 20.0 if deadline is None else (deadline - time.monotonic()) * 1000
                if wait <= 0:
                    return False
                if spin and self._spin():
                    continue
                # after a poll that ran out, a connection is idle: sleep without spinning
                spin = bool(poller.poll(max(1, min(20, int(wait))))) and self.busy_poll > 0
        finally:
            self._app_left = time.monotonic()
            self._app_polling = False
            if self._rx_waiters:
                self._dispatcher_wake.set()      # they wait for frames nobody takes now
            self._rx_lock.release()

    def _spin(self) -> bool:
        """Look at the receive ring for up to `busy_poll` seconds; whether a frame came
        (the stack's own threads, the gen pump's ACKs among them, run in between)."""
        return spin_until(self.xsk.waiting, self.busy_poll)

    def _resend(self) -> None:
        """Sockets the data path went back N for while they were not sending: resend from
        `snd_una` (egress says where; the socket asks it). The same thread finishes the
        closes the applications left to the stack (`_finish_closes`)."""
        with self.egress.entered():
            while True:
                try:
                    sock = self._resends.get(timeout=LINGER_POLL if self._lingering else None)
                except queue.Empty:
                    sock = None
                else:
                    if sock is None:
                        return
                    try:
                        sock._rewind_and_pump()
                    except OSError:
                        pass      # the socket's own calls raise what went wrong
                if self._lingering:
                    self._finish_closes()

    def _linger(self, sock: TcpSocket, timeout: float) -> None:
        """`sock` was closed by its application with its FIN sent: the stack keeps its
        connection until the close is complete (`_finish_closes`), `timeout` at most."""
        with self._lock:
            if sock._gone:
                return
            self._lingering[sock] = (time.monotonic() + timeout, None)
        self._resends.put(sock)           # wakes the worker, which looks at it at once

    def _finish_closes(self) -> None:
        """The closed connections whose close is complete (the peer's FIN in and ours
        acknowledged) stay TIME_WAIT longer, so that a FIN the peer sends again is
        acknowledged, and then go; one not complete by its deadline is reset."""
        now = time.monotonic()
        with self._lock:
            lingering = list(self._lingering.items())
        for sock, (deadline, quiet_at) in lingering:
            if sock._gone:
                continue
            if sock._error is not None:
                self._forget(sock.key)
            elif quiet_at is not None:
                if now >= quiet_at:
                    self._forget(sock.key)
            elif sock._close_complete():
                with self._lock:
                    if sock in self._lingering:
                        self._lingering[sock] = (deadline, now + TIME_WAIT)
            elif now >= deadline:
                sock.abort()

    def _consumed(self, sock: TcpSocket) -> None:
        """Tell the data path how far `sock`'s data is off the AF_XDP socket (it sizes the
        window by it), and when that opened the window a good deal, send the peer an ACK
        saying so: a peer facing a closed window would otherwise wait for its probe timer.
        The data path is told once a sixteenth of the buffer has been taken since it last
        was (or before that ACK): on the path of every receive, a map update is a tenth of a
        64-byte round trip, and the window it would advertise is never more than that
        sixteenth below the truth."""
        read = sock._rcv_next
        update = not sock._eof and (read - sock._window_told) & 0xFFFFFFFF >= WINDOW_UPDATE
        if update or (read - sock._read_told) & 0xFFFFFFFF >= max(1, sock._rcv_buf >> 4):
            try:   # raw bytes: the typed map's encoding costs 10 us
                self.raw_maps["reads"].update(sock._raw_key(), _READ.pack(read))
            except EtranRuntimeError:
                return                     # the connection was removed meanwhile
            sock._read_told = read
        if update:
            sock._window_told = read
            if not self._window_was_small(sock, read):
                return
            try:
                self.maps["acks"].push({**self._map_key(sock.key), "dup": 0})
            except EtranRuntimeError:
                pass                       # the queue is full: ACKs are on their way anyway
            self.pump.ask()

    def _window_was_small(self, sock: TcpSocket, read: int) -> bool:
        """Whether the window our last ACK left the peer is at most half the buffer and
        what we would advertise now is at least twice it: Linux's rule for a window
        update after a read (tcp_cleanup_rbuf). Otherwise the ACKs that data earns say
        the window soon enough, and an update would be one more ACK per read."""
        fields = sock._entry_u32s(self._told_fields)
        if fields is None:
            return False
        rcv_nxt, last_ack, last_wnd = fields
        left = max(0, last_wnd - ((rcv_nxt - last_ack) & 0xFFFFFFFF))
        now = max(0, sock._rcv_buf - ((rcv_nxt - read) & 0xFFFFFFFF))
        return 2 * left <= sock._rcv_buf and now >= 2 * left

    def _deliver(self, seg: Segment) -> TcpSocket | None:
        key = (seg.src, seg.sport, seg.dport)
        with self._lock:
            sock = self._conns.get(key)
            listener = self._listeners.get(seg.dport)
        if sock is not None:
            sock._segment(seg)
            return sock
        elif listener is not None and seg.flags & (SYN | ACK | RST) == SYN:
            listener._syn(seg)
        elif not seg.has(RST):
            # No such connection: tell the peer, as RFC 9293 section 3.10.7.1 says.
            if seg.has(ACK):
                self._send_control(key, seq=seg.ack, flags=RST)
            else:
                self._send_control(key, seq=0, ack=seg.seq + len(seg.payload)
                                   + (1 if seg.flags & (SYN | FIN) else 0), flags=RST | ACK)
        return None


class TcpListener:
    """A listening port: `accept()` returns connections whose handshake is done."""

    def __init__(self, stack: TcpStack, port: int, backlog: int) -> None:
        self.stack = stack
        self.port = port
        self.backlog = backlog
        self._ready: deque[TcpSocket] = deque()
        self._cv = threading.Condition()
        self.timeout: float | None = None

    def _syn(self, seg: Segment) -> None:
        stack = self.stack
        key = (seg.src, seg.sport, self.port)
        with self._cv:
            if len(self._ready) >= self.backlog:
                return                   # dropped, as a full backlog does: the peer retries
        sock = TcpSocket(stack, key, None)
        iss = random.getrandbits(32)
        sock._rcv_next = sock._window_told = sock._read_told = (seg.seq + 1) & 0xFFFFFFFF
        with stack._lock:
            stack._conns[key] = sock
        # The entry goes in before the SYN-ACK leaves, so the final ACK and any data right
        # behind it meet an established connection (snd_una = iss: the SYN is unacked).
        ecn = stack.ecn and seg.has(ECE | CWR)      # RFC 3168: the SYN asks with both
        stack._negotiate(sock, seg)
        stack._install(sock, snd_una=iss, snd_nxt=iss + 1, rcv_nxt=seg.seq + 1,
                       window=seg.window, peer_mac=seg.src_mac, ecn=ecn)
        # the SYN-ACK offers window scaling, timestamps and SACK only to a SYN that did
        ts = None if sock._ts_recent is None else (ts_clock(), sock._ts_recent)
        options = sg.syn_options(stack.wscale if seg.wscale is not None else None, ts=ts,
                                 sack=sock._sack)
        sock._syn_ack = (iss, seg.seq + 1, ecn, options)
        sock._base = (iss + 1) & 0xFFFFFFFF
        stack._send_control(key, seq=iss, ack=seg.seq + 1, flags=SYN | ACK | (ECE if ecn else 0),
                            options=options)
        sock._handshake.set()
        with self._cv:
            self._ready.append(sock)
            self._cv.notify()

    def accept(self) -> tuple[TcpSocket, tuple[str, int]]:
        with self._cv:
            if not self._cv.wait_for(lambda: self._ready, self.timeout):
                raise _error(errno.ETIMEDOUT, f"accept on port {self.port}")
            sock = self._ready.popleft()
        return sock, (sock.key[0], sock.key[1])

    def settimeout(self, timeout: float | None) -> None:
        self.timeout = timeout

    def close(self) -> None:
        stack = self.stack
        with stack._lock:
            stack._listeners.pop(self.port, None)
            busy = any(k[2] == self.port for k in stack._conns)
        if not busy:
            stack.maps["ports"].delete(self.port)

    def __enter__(self) -> TcpListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TcpSocket:
    """One connection, as an application sees it."""

    def __init__(self, stack: TcpStack, key: Key, timeout: float | None) -> None:
        self.stack = stack
        self.key = key
        self.timeout = timeout
        self._iss = 0
        self._mss = sg.MSS
        # (iss, ack, ecn, options) of our SYN-ACK
        self._syn_ack: tuple[int, int, bool, bytes] | None = None
        self._wscale = (0, 0)              # window-scale shifts: the peer's windows, ours
        self._rcv_buf = RECEIVE_BUFFER     # what we advertise at most
        self._ts_recent: int | None = None   # the peer's timestamp at the handshake, when on
        self._sack = False                 # SACK negotiated: our ACKs carry blocks
        self.ecn = False                   # ECN negotiated
        self._handshake = threading.Event()
        self._cv = threading.Condition()
        self._key_bytes: bytes | None = None    # its ConnKey, encoded (`_raw_key`)
        self._template: bytes | None = None     # its data segments' headers (`_segment_head`)
        self._watch_room_until = 0.0            # read the window before sending until then
        self._buffer = bytearray()
        self._rcv_next = 0                 # the sequence number of the next byte for recv
        self._window_told = 0              # _rcv_next when we last pushed a window update
        self._read_told = 0                # ... and when we last wrote it into `reads`
        self._pending: dict[int, bytes] = {}   # segments ahead of it, by sequence number
        self._eof = False
        self._error: int | None = None
        self._wr_closed = False
        self._closed = False               # by the application: its calls raise EBADF
        self._gone = False                 # removed from the stack and the data path
        # Sending: the bytes from `_base` (a sequence number) on, of which `_sent` went out;
        # our FIN follows them once `_fin` is set. Guarded by `_send_lock`, which also keeps
        # the application and the resend worker from interleaving segments.
        self._send_lock = threading.Lock()
        self._base = 0
        self._sendbuf = bytearray()
        self._sent = 0
        self._since_trim = 0        # segments sent since `_trim` last looked at snd_una
        self._fin = False
        self._fin_sent = False

    # ---------------------------------------------------------------- from the dispatcher
    def _segment(self, seg: Segment) -> None:
        if seg.has(RST):
            if not self._handshake.is_set():
                # RFC 9293 3.10.7.3: in SYN-SENT a RST counts if it acknowledges our SYN.
                if seg.has(ACK) and seg.ack == (self._iss + 1) & 0xFFFFFFFF:
                    self.stack._forget(self.key)     # gone before the application wakes
                    self._fail(errno.ECONNREFUSED)
                return
            self._rst(seg)
            return
        if not self._handshake.is_set():
            if seg.has(SYN | ACK) and seg.ack == (self._iss + 1) & 0xFFFFFFFF:
                self._rcv_next = self._window_told = self._read_told = \
                    (seg.seq + 1) & 0xFFFFFFFF
                ecn = self.stack.ecn and seg.flags & (ECE | CWR) == ECE
                self.stack._negotiate(self, seg)
                self.stack._install(self, snd_una=self._iss + 1, snd_nxt=self._iss + 1,
                                    rcv_nxt=seg.seq + 1, window=seg.window,
                                    peer_mac=seg.src_mac, ecn=ecn)
                self.stack._send_control(self.key, seq=self._iss + 1, ack=seg.seq + 1,
                                         flags=ACK, window=self._window_field(self._rcv_buf),
                                         options=self._ts_options(self._ts_recent))
                self._handshake.set()
            return
        if seg.has(SYN):
            if self._syn_ack is not None and (seg.seq + 1) & 0xFFFFFFFF == self._syn_ack[1]:
                iss, ack, ecn, options = self._syn_ack   # our SYN-ACK was lost: asked again
                self.stack._send_control(self.key, seq=iss, ack=ack,
                                         flags=SYN | ACK | (ECE if ecn else 0),
                                         options=options)
            else:
                self._challenge_ack()          # RFC 5961 section 4: a SYN is never trusted
            return
        with self._cv:
            self._place(seg.seq, seg.payload, seg.has(FIN))
            self._cv.notify_all()

    def _data(self, seq: int, payload: bytes) -> None:
        """A data segment of the established connection (`TcpStack._drain`'s fast way)."""
        with self._cv:
            self._place(seq, payload, False)
            self._cv.notify_all()

    def _rst(self, seg: Segment) -> None:
        """RFC 5961 section 3 (RFC 9293 3.10.7.4): a RST resets the connection only when its
        sequence number is exactly the next one we expect; one elsewhere in the window earns
        a challenge ACK (a peer that really reset sends a RST with the right number); one
        outside the window is ignored. Blind RSTs cannot tear a connection down."""
        entry = self.stack.connection(self)
        if entry is None:
            return
        offset = (seg.seq - entry["rcv_nxt"]) & 0xFFFFFFFF
        if offset == 0:
            self.stack._forget(self.key)        # gone before the application wakes
            self._fail(errno.ECONNRESET)
        elif offset < self._rcv_buf:
            self._challenge_ack()

    def _ts_options(self, ecr: int | None) -> bytes:
        """The timestamps a control segment carries when they were negotiated."""
        return b"" if self._ts_recent is None else sg.ts_option(ts_clock(), ecr or 0)

    def _window_field(self, window: int) -> int:
        """`window` bytes as our segments' window field says it (shifted by our scale)."""
        return min(window >> self._wscale[1], 0xFFFF)

    def _challenge_ack(self) -> None:
        entry = self.stack.connection(self)
        if entry is not None:
            # the window the data path advertised last (all of it before any ACK of its own)
            window = entry["last_wnd"] if entry["last_ack"] else self._rcv_buf
            self.stack._send_control(self.key, seq=entry["snd_nxt"], ack=entry["rcv_nxt"],
                                     flags=ACK, window=self._window_field(window),
                                     options=self._ts_options(entry["ts_recent"]))

    def _place(self, seq: int, payload: bytes, fin: bool) -> None:
        """Put a delivered segment where its sequence number says: ingress delivers data in
        order and up to four out-of-order intervals ahead of it, which wait here for the
        holes."""
        ahead = (seq - self._rcv_next) & 0xFFFFFFFF
        if ahead >= 1 << 31:                       # starts before what we have: the new tail
            behind = (1 << 32) - ahead
            if behind >= len(payload):
                return
            payload, ahead = payload[behind:], 0
        if ahead:
            self._pending[seq] = payload
            return
        self._buffer += payload
        self._rcv_next = (self._rcv_next + len(payload)) & 0xFFFFFFFF
        while (more := self._pending.pop(self._rcv_next, None)) is not None:
            self._buffer += more
            self._rcv_next = (self._rcv_next + len(more)) & 0xFFFFFFFF
        if fin:
            self._eof = True
        if self._closed:
            self._buffer.clear()                   # nobody will read it (`close`)

    def _fail(self, code: int) -> None:
        with self._cv:
            self._error = code
            self._cv.notify_all()
        self._handshake.set()

    # ---------------------------------------------------------------- the socket interface
    def settimeout(self, timeout: float | None) -> None:
        self.timeout = timeout

    def gettimeout(self) -> float | None:
        return self.timeout

    def _check(self, what: str) -> None:
        if self._closed:
            raise _error(errno.EBADF, f"{what}: the socket is closed")
        self._check_alive(what)

    def _check_alive(self, what: str) -> None:
        if self._gone and self._error is None:
            raise _error(errno.EBADF, f"{what}: the connection is closed")
        if self.stack.error is not None:
            raise _error(errno.EIO, f"{what}: the stack stopped ({self.stack.error!r})")
        if self._error is not None:
            raise _error(self._error, what)

    def send(self, data: bytes) -> int:
        """Send all of `data` (in segments of at most the peer's MSS); returns its length."""
        self.sendall(data)
        return len(data)

    def sendall(self, data: bytes) -> None:
        self._check("send")
        if self._wr_closed:
            raise _error(errno.EPIPE, "send after shutdown")
        with self._send_lock:
            self._sendbuf += data
            self._pump("send")

    def _pump(self, what: str) -> None:
        """Send what is unsent, in order, until all is out (caller holds `_send_lock`): up to
        BATCH segments per call into egress, which stops at the first it does not send."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        wait = WINDOW_POLL
        while True:
            if what == "resend":      # also after the application closed it (`close`)
                self._check_alive(what)
            else:
                self._check(what)
            if self._since_trim >= TRIM_EVERY:
                # counted across calls: a sender of one segment a call (request/response)
                # would otherwise keep all it ever sent
                self._trim()
                self._since_trim = 0
            heads: list[bytearray] = []
            bodies: list[bytearray] = []
            seqs: list[int] = []
            at = self._sent
            # the window is read first only while it has been limiting the sender lately
            # (a refusal in the last ROOM_WATCH): a request/response exchange never is, and
            # keeps its round trip free of the extra lookup
            room = self._room() if self.stack.native is not None and \
                time.monotonic() < self._watch_room_until else None
            buffered = len(self._sendbuf)
            mss = self._mss
            if room is not None and at < buffered and room < min(mss, buffered - at):
                # the window has no room for the next segment: what egress would refuse is
                # not sent at all (nor a sliver of a segment: RFC 9293's silly windows)
                if deadline is not None and time.monotonic() > deadline:
                    raise _error(errno.ETIMEDOUT, f"{what}: the peer's window stayed full")
                self._watch_room_until = time.monotonic() + ROOM_WATCH
                time.sleep(wait)
                wait = min(wait * 2, WINDOW_POLL_MAX)
                continue
            end = buffered if room is None else min(buffered, at + room)
            while len(heads) < BATCH and at < buffered and at + min(mss, buffered - at) <= end:
                payload = self._sendbuf[at:at + mss]
                seq = (self._base + at) & 0xFFFFFFFF
                heads.append(self._segment_head(seq, PSH, len(payload)))
                bodies.append(payload)
                seqs.append(seq)
                at += len(payload)
            fin_in_batch = False
            if at == buffered and self._fin and not self._fin_sent and len(heads) < BATCH:
                seq = (self._base + at) & 0xFFFFFFFF
                heads.append(self._segment_head(seq, FIN, 0))
                bodies.append(bytearray())
                seqs.append(seq)
                fin_in_batch = True
            if not heads:
                return
            if self.stack.native is not None:
                sent, verdict, back = self.stack._send_native(self, heads, bodies, seqs)
            else:
                assert isinstance(self.stack.egress, Egress)
                sent, verdict, back = self.stack.egress.send_until_refused(
                    [bytes(h + b) for h, b in zip(heads, bodies)])
            self._sent += sum(map(len, bodies[:sent]))
            if fin_in_batch and sent == len(heads):
                self._fin_sent = True
            self._since_trim += sent
            if verdict == XDP_TX:
                if self._sent == buffered and (self._fin_sent or not self._fin):
                    return                    # all of it is out
                wait = WINDOW_POLL
                continue
            note = sg.parse_notice(back) if verdict == XDP_REDIRECT and back else None
            if note is None:
                raise _error(self._error or errno.EPIPE, f"{what}: the connection is gone")
            if note.why == NOTICE_RESUME:
                self._resume_at(note.resume)
                continue
            # The peer's window (or cwnd) is full: wait for ACKs to open it.
            self._watch_room_until = time.monotonic() + ROOM_WATCH
            if deadline is not None and time.monotonic() > deadline:
                raise _error(errno.ETIMEDOUT, f"{what}: the peer's window stayed full")
            self._trim()
            time.sleep(wait)
            wait = min(wait * 2, WINDOW_POLL_MAX)

    def _raw_key(self) -> bytes:
        """This connection's key in the data path's `conns` and `reads` (both keyed by a
        ConnKey), encoded once."""
        if self._key_bytes is None:
            stack = self.stack
            self._key_bytes = stack.maps["conns"].encode_key(stack._map_key(self.key))
        return self._key_bytes

    def _room(self) -> int | None:
        """On the native path, what egress would let through now: `min(cwnd, the peer's
        window)` less what is in flight, from the data path's entry (None: no entry). A
        segment it refuses anyway comes back as a notice; sending only what fits keeps those
        (and the followers egress refuses as stale) rare."""
        fields = self._sender_fields()
        if fields is None:
            return None
        una, nxt, wnd, cwnd, mss = fields
        return min(cwnd * mss, wnd) - ((nxt - una) & 0xFFFFFFFF)

    def _entry(self) -> bytes | None:
        """The data path's entry as raw bytes (None: no entry): decoding the whole entry
        (350 bytes, through the typed map) costs a 64-byte round trip more than its network
        time."""
        raw: bytes | None = self.stack.raw_maps["conns"].lookup(self._raw_key())
        return raw

    def _entry_u32s(self, offsets: tuple[int, ...]) -> tuple[int, ...] | None:
        """The u32 fields at `offsets` of the data path's entry (None: no entry)."""
        raw = self._entry()
        return None if raw is None else _u32s(raw, offsets)

    def _sender_fields(self) -> tuple[int, ...] | None:
        """snd_una, snd_nxt, snd_wnd, cwnd and mss from the data path's entry."""
        return self._entry_u32s(self.stack._room_fields)

    def _close_complete(self) -> bool:
        """The peer's FIN is in and acknowledged (our last ACK covers it: gen sends that
        ACK, and a stack closed before it left would have the peer send its FIN again
        into a host that no longer knows the connection), and everything we sent, our FIN
        too, is acknowledged."""
        if not self._eof:
            return False
        stack = self.stack
        fields = self._entry_u32s(stack._room_fields[:2] + stack._told_fields[:2])
        if fields is None:
            return True
        una, nxt, rcv_nxt, last_ack = fields
        return una == nxt and last_ack == rcv_nxt

    def _resume_at(self, seq: int) -> None:
        """Egress says the next byte to send is `seq` (after a go-back): send from there."""
        self._trim()
        offset = (seq - self._base) & 0xFFFFFFFF
        if offset <= len(self._sendbuf):
            self._sent = offset
            self._fin_sent = False
        elif offset == len(self._sendbuf) + 1 and self._fin_sent:
            self._sent = len(self._sendbuf)    # only our FIN was out, and it is still out

    def _rewind_and_pump(self) -> None:
        with self._send_lock:
            if self._gone or self._error is not None:
                return
            fields = self._sender_fields()
            if fields is not None:
                self._resume_at(fields[1])           # snd_nxt
                self._pump("resend")

    def _trim(self) -> None:
        """Forget what the peer acknowledged (the data path's `snd_una`)."""
        fields = self._sender_fields()
        if fields is None:
            return
        una = fields[0]
        done = (una - self._base) & 0xFFFFFFFF
        if 0 < done <= len(self._sendbuf):
            del self._sendbuf[:done]
            self._base = una
            self._sent = max(0, self._sent - done)

    def _segment_head(self, seq: int, flags: int, length: int) -> bytearray:
        """The headers of a data (or FIN) segment of `length` payload bytes for egress to
        stamp: this connection's headers, built once (`sg.build`), with the length,
        sequence number and flags written in."""
        if self._template is None:
            peer_ip, peer_port, local_port = self.key
            stack = self.stack
            self._template = sg.build(
                src_mac=stack.host.mac_bytes, dst_mac=stack._mac(peer_ip), src=stack.host.ip,
                dst=peer_ip, sport=local_port, dport=peer_port, checksums=False,
                options=b"" if self._ts_recent is None else sg.TS_ROOM)
        head = bytearray(self._template)
        _IP_LEN.pack_into(head, 16, len(head) - 14 + length)
        _SEQ.pack_into(head, 38, seq)
        head[47] = flags
        return head

    def recv(self, bufsize: int) -> bytes:
        """Up to `bufsize` bytes; b"" once the peer has closed and everything was read.
        While nothing is there, the calling thread takes frames off the AF_XDP socket itself
        (`TcpStack._serve_until`) unless another thread already does."""
        def readable() -> bool:
            return bool(self._buffer or self._eof or self._error is not None or self._closed)

        ready: bool | None = readable()
        if not ready:
            ready = self.stack._serve_until(readable, self.timeout)
        with self._cv:
            if ready is None:
                stack = self.stack
                with stack._waiters_lock:
                    stack._rx_waiters += 1
                if not stack._app_polling:
                    stack._dispatcher_wake.set()     # nobody takes the frames now
                try:
                    ready = self._cv.wait_for(readable, self.timeout)
                finally:
                    with stack._waiters_lock:
                        stack._rx_waiters -= 1
            if self._buffer:
                out = bytes(self._buffer[:bufsize])
                del self._buffer[:bufsize]
                return out
        self._check("recv")
        if self._eof:
            return b""
        if not ready:
            raise _error(errno.ETIMEDOUT, "recv: nothing arrived")
        return b""

    def shutdown(self, how: int) -> None:
        """SHUT_WR (or SHUT_RDWR) sends our FIN once; reading stays possible until the
        peer's FIN."""
        self._check("shutdown")
        if how in (_socket.SHUT_WR, _socket.SHUT_RDWR) and not self._wr_closed:
            with self._send_lock:
                self._fin = True
                self._pump("shutdown")
            self._wr_closed = True

    def close(self) -> None:
        """Send our FIN if not yet sent and return, as a Linux socket's close does: the
        stack finishes the close in the background (`TcpStack._finish_closes`: the peer's
        FIN, ours acknowledged, resends if needed, TIME-WAIT), or resets the connection
        when that takes longer than the socket's timeout (LINGER when it has none). Data
        that arrives meanwhile is acknowledged and dropped."""
        if self._closed:
            return
        linger = False
        try:
            if self._error is None and self.stack.error is None and not self._gone:
                if not self._wr_closed:
                    self.shutdown(_socket.SHUT_WR)
                linger = True
        finally:
            self._closed = True
            with self._cv:
                self._buffer.clear()
                self._cv.notify_all()
            if linger:
                self.stack._linger(self, LINGER if self.timeout is None else self.timeout)
            else:
                self.stack._forget(self.key)

    def abort(self) -> None:
        """Reset the connection (RST to the peer) and remove it."""
        if self._gone:
            return
        entry = self.stack.connection(self)
        if entry is not None:
            self.stack._send_control(self.key, seq=entry["snd_nxt"], flags=RST)
        self._fail(errno.ECONNABORTED)
        self._closed = True
        self.stack._forget(self.key)

    def getpeername(self) -> tuple[str, int]:
        return self.key[0], self.key[1]

    def getsockname(self) -> tuple[str, int]:
        return self.stack.host.ip, self.key[2]

    def __enter__(self) -> TcpSocket:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


__all__ = ["EtranRuntimeError", "TcpListener", "TcpSocket", "TcpStack"]

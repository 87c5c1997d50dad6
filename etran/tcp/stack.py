"""The TCP control plane of one host, and the sockets applications hold.

`TcpStack(topology, host)` loads the data path (`etran/transports/tcp.py`) on the host,
attaches its ingress, opens the AF_XDP socket its ingress delivers to, and runs two threads:
the gen pump (ACKs whenever ingress asks) and the dispatcher (every frame the socket
receives goes to the connection or listener it belongs to). It does what is not per-segment
work: the handshake in both directions (MSS offered, nothing else: no window scaling,
timestamps or SACK, which the peer then does not use either), entering and removing
connections in the data path's maps, RST in both directions, and the close.

`TcpSocket` has the shape of a socket: `send`/`sendall`/`recv`/`shutdown`/`close`, timeouts,
context manager, OSError subclasses with errno. Data segments go through the egress program,
which stamps them; a segment it returns (the peer's window is full) is sent again, in order,
once ACKs open the window.
"""

from __future__ import annotations

import errno
import os
import random
import socket as _socket
import threading
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Any

from etran.abi import XDP_REDIRECT, XDP_TX
from etran.runtime.afxdp import XskSocket
from etran.runtime.errors import EtranRuntimeError
from etran.runtime.hooks import Egress, Gen, GenPump
from etran.runtime.loader import load_object
from etran.runtime.topology import Host, Topology
from etran.runtime.transmit import HostPort
from etran.runtime.typed import TypedMap, typed_maps
from etran.tcp import segments as sg
from etran.tcp.segments import ACK, FIN, PSH, RST, SYN, Segment

TRANSPORT = Path(__file__).resolve().parents[1] / "transports" / "tcp.py"
ESTABLISHED, PEER_CLOSED = 1, 2          # Conn.state in the data path
SYN_RETRIES = 5
SYN_TIMEOUT = 0.2                        # first SYN retransmission; doubles
WINDOW_POLL = 0.0002                     # how often a sender looks at a full window again
TIME_WAIT = 0.05                         # how long a closed connection's entry lingers


def TcpError(code: int, what: str) -> OSError:
    """The OSError the socket module would raise for `code`: ConnectionRefusedError for
    ECONNREFUSED, ConnectionResetError, TimeoutError, BrokenPipeError..., errno set."""
    return OSError(code, f"{os.strerror(code)}: {what}")


_compiled: dict[str, Any] = {}


def _transport() -> Any:
    if "tcp" not in _compiled:
        from etran.pipeline import compile_file  # the compiler only where a stack starts
        _compiled["tcp"] = compile_file(TRANSPORT)
    return _compiled["tcp"]


Key = tuple[str, int, int]               # (peer address, peer port, local port)


class TcpStack:
    """etran's TCP on host `host` of `topology`; close it (or `with`) before the topology."""

    def __init__(self, topology: Topology, host: str) -> None:
        self.host: Host = topology.host(host)
        self.neighbours = {h.ip: h.mac_bytes for h in topology.hosts.values()}
        compiled = _transport()
        self._closers: list[Any] = []
        try:
            self.loaded = topology.own(load_object(compiled.elf, f"tcp_{host}"[:15]), host)
            self.maps: dict[str, TypedMap] = typed_maps(self.loaded, compiled.program)
            topology.attach(host, self.loaded.programs["tcp_rx"])
            self.xsk = XskSocket(self.host.interface)
            self._closers.append(self.xsk)
            self.xsk.register(self.loaded.maps["sockets"])
            self.egress = Egress(self.loaded.programs["tcp_tx"], self.host.interface)
            self._closers.append(self.egress)
            self.gen = Gen(self.loaded.programs["tcp_ack"], self.host.interface)
            self._closers.append(self.gen)
            self.port = HostPort(self.host.interface)
            self._closers.append(self.port)
            self.pump = GenPump(self.gen, flag=(self.loaded.maps["wake"], bytes(4)))
            self._closers.insert(0, _Stopper(self.pump))
        except BaseException:
            self._close_parts()
            raise
        self._lock = threading.Lock()
        self._conns: dict[Key, TcpSocket] = {}
        self._listeners: dict[int, TcpListener] = {}
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._dispatch, name=f"etran-tcp-{host}",
                                        daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- applications
    def connect(self, address: tuple[str, int], timeout: float | None = 5.0) -> TcpSocket:
        """Active open to `address`; raises ConnectionRefusedError (ECONNREFUSED) on a RST,
        TimeoutError (ETIMEDOUT) when no SYN-ACK comes."""
        peer_ip, peer_port = address
        local_port = self._free_port()
        sock = TcpSocket(self, (peer_ip, peer_port, local_port), timeout)
        sock._iss = random.getrandbits(32)
        with self._lock:
            self._conns[sock.key] = sock
        self.maps["ports"][local_port] = {"owned": 1}
        try:
            wait = SYN_TIMEOUT
            for _ in range(SYN_RETRIES):
                self._send_control(sock.key, seq=sock._iss, flags=SYN, options=sg.mss_option())
                if sock._handshake.wait(wait):
                    break
                wait *= 2
            if sock._error is not None:
                raise TcpError(sock._error, f"connect to {peer_ip}:{peer_port}")
            if not sock._handshake.is_set():
                raise TcpError(errno.ETIMEDOUT, f"connect to {peer_ip}:{peer_port}: no answer "
                               f"to {SYN_RETRIES} SYNs")
        except BaseException:
            self._forget(sock.key)
            raise
        return sock

    def listen(self, port: int, backlog: int = 16) -> TcpListener:
        """Passive open on `port` of this host's address."""
        with self._lock:
            if port in self._listeners:
                raise TcpError(errno.EADDRINUSE, f"listen on port {port}")
            listener = TcpListener(self, port, backlog)
            self._listeners[port] = listener
        self.maps["ports"][port] = {"owned": 1}
        return listener

    def connection(self, sock: TcpSocket) -> dict[str, Any] | None:
        """The data path's entry for `sock` (state, sequence numbers, counters)."""
        got = self.maps["conns"].get(self._map_key(sock.key))
        return got if isinstance(got, dict) else None

    def counters(self) -> dict[str, int]:
        """Segments ingress refused (summed over CPUs)."""
        per_cpu = self.maps["counters"].get(0) or []
        out: dict[str, int] = {}
        for entry in per_cpu:
            for name, value in entry.items():
                out[name] = out.get(name, 0) + value
        return out

    def close(self) -> None:
        """Reset every open connection, stop the threads, release sockets and namespace."""
        for sock in list(self._conns.values()):
            sock.abort()
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._close_parts()

    def _close_parts(self) -> None:
        errors = []
        for part in self._closers:
            try:
                part.close()
            except Exception as exc:  # every part gets closed; the first failure is raised
                errors.append(exc)
        self._closers = []
        if errors:
            raise errors[0]

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
                      options: bytes = b"") -> None:
        peer_ip, peer_port, local_port = key
        self.port.transmit(sg.build(
            src_mac=self.host.mac_bytes, dst_mac=self._mac(peer_ip), src=self.host.ip,
            dst=peer_ip, sport=local_port, dport=peer_port, seq=seq, ack=ack, flags=flags,
            options=options))

    def _mac(self, ip: str) -> bytes:
        try:
            return self.neighbours[ip]
        except KeyError:
            raise TcpError(errno.EHOSTUNREACH, f"{ip} is not a host of this topology") from None

    def _install(self, sock: TcpSocket, *, snd_una: int, snd_nxt: int, rcv_nxt: int,
                 window: int, peer_mac: bytes) -> None:
        peer_ip, peer_port, local_port = sock.key
        self.maps["conns"][self._map_key(sock.key)] = {
            "state": ESTABLISHED, "snd_una": snd_una & 0xFFFFFFFF,
            "snd_nxt": snd_nxt & 0xFFFFFFFF, "snd_wnd": window, "rcv_nxt": rcv_nxt & 0xFFFFFFFF,
            "local_ip": sg.ip_int(self.host.ip), "local_port": local_port,
            "peer_port": peer_port, "peer_ip": sg.ip_int(peer_ip),
            "local_mac": {"octets": list(self.host.mac_bytes)},
            "peer_mac": {"octets": list(peer_mac)}}

    def _forget(self, key: Key, *, keep_port: bool = False) -> None:
        with self._lock:
            self._conns.pop(key, None)
            listening = key[2] in self._listeners
        self.maps["conns"].delete(self._map_key(key))
        if not keep_port and not listening:
            self.maps["ports"].delete(key[2])

    def _dispatch(self) -> None:
        try:
            while not self._stop.is_set():
                for frame in self.xsk.recv(64, timeout=0.02):
                    seg = sg.parse(frame)
                    if seg is not None and seg.dst == self.host.ip:
                        self._deliver(seg)
        except BaseException as exc:  # surfaced to the sockets, which raise it
            self.error = exc
            for sock in list(self._conns.values()):
                sock._fail(errno.EIO)

    def _deliver(self, seg: Segment) -> None:
        key = (seg.src, seg.sport, seg.dport)
        with self._lock:
            sock = self._conns.get(key)
            listener = self._listeners.get(seg.dport)
        if sock is not None:
            sock._segment(seg)
        elif listener is not None and seg.flags & (SYN | ACK | RST) == SYN:
            listener._syn(seg)
        elif not seg.has(RST):
            # No such connection: tell the peer, as RFC 9293 section 3.10.7.1 says.
            if seg.has(ACK):
                self._send_control(key, seq=seg.ack, flags=RST)
            else:
                self._send_control(key, seq=0, ack=seg.seq + len(seg.payload)
                                   + (1 if seg.flags & (SYN | FIN) else 0), flags=RST | ACK)


class _Stopper:
    def __init__(self, pump: GenPump) -> None:
        self.pump = pump

    def close(self) -> None:
        self.pump.stop()


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
        sock._mss = min(seg.mss or 536, sg.MSS)
        with stack._lock:
            stack._conns[key] = sock
        # The entry goes in before the SYN-ACK leaves, so the final ACK and any data right
        # behind it meet an established connection (snd_una = iss: the SYN is unacked).
        stack._install(sock, snd_una=iss, snd_nxt=iss + 1, rcv_nxt=seg.seq + 1,
                       window=seg.window, peer_mac=seg.src_mac)
        sock._syn_ack = (iss, seg.seq + 1)
        stack._send_control(key, seq=iss, ack=seg.seq + 1, flags=SYN | ACK,
                            options=sg.mss_option())
        sock._handshake.set()
        with self._cv:
            self._ready.append(sock)
            self._cv.notify()

    def accept(self) -> tuple[TcpSocket, tuple[str, int]]:
        with self._cv:
            if not self._cv.wait_for(lambda: self._ready, self.timeout):
                raise TcpError(errno.ETIMEDOUT, f"accept on port {self.port}")
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
        self._syn_ack: tuple[int, int] | None = None   # (iss, ack) of our SYN-ACK
        self._handshake = threading.Event()
        self._cv = threading.Condition()
        self._buffer = bytearray()
        self._eof = False
        self._error: int | None = None
        self._wr_closed = False
        self._closed = False

    # ---------------------------------------------------------------- from the dispatcher
    def _segment(self, seg: Segment) -> None:
        if seg.has(RST):
            self._fail(errno.ECONNREFUSED if not self._handshake.is_set() else errno.ECONNRESET)
            self.stack._forget(self.key)
            return
        if not self._handshake.is_set():
            if seg.has(SYN | ACK) and seg.ack == (self._iss + 1) & 0xFFFFFFFF:
                self._mss = min(seg.mss or 536, sg.MSS)
                self.stack._install(self, snd_una=self._iss + 1, snd_nxt=self._iss + 1,
                                    rcv_nxt=seg.seq + 1, window=seg.window,
                                    peer_mac=seg.src_mac)
                self.stack._send_control(self.key, seq=self._iss + 1, ack=seg.seq + 1,
                                         flags=ACK)
                self._handshake.set()
            return
        if seg.has(SYN):
            if self._syn_ack is not None:    # our SYN-ACK was lost: the peer asks again
                iss, ack = self._syn_ack
                self.stack._send_control(self.key, seq=iss, ack=ack, flags=SYN | ACK,
                                         options=sg.mss_option())
            return
        with self._cv:
            self._buffer += seg.payload
            if seg.has(FIN):
                self._eof = True
            self._cv.notify_all()

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
            raise TcpError(errno.EBADF, f"{what}: the socket is closed")
        if self._error is not None:
            raise TcpError(self._error, what)
        if self.stack.error is not None:
            raise TcpError(errno.EIO, f"{what}: the stack stopped ({self.stack.error})")

    def send(self, data: bytes) -> int:
        """Send all of `data` (in segments of at most the peer's MSS); returns its length."""
        self.sendall(data)
        return len(data)

    def sendall(self, data: bytes) -> None:
        self._check("send")
        if self._wr_closed:
            raise TcpError(errno.EPIPE, "send after shutdown")
        view = memoryview(bytes(data))
        for start in range(0, len(view), self._mss):
            self._send_segment(PSH, bytes(view[start:start + self._mss]))

    def _send_segment(self, flags: int, payload: bytes) -> None:
        peer_ip, peer_port, local_port = self.key
        stack = self.stack
        frame = sg.build(src_mac=stack.host.mac_bytes, dst_mac=stack._mac(peer_ip),
                         src=stack.host.ip, dst=peer_ip, sport=local_port, dport=peer_port,
                         flags=flags, payload=payload)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            verdict = stack.egress.send_one(frame)
            if verdict == XDP_TX:
                return
            if verdict != XDP_REDIRECT:
                raise TcpError(self._error or errno.EPIPE, "send: the connection is gone")
            self._check("send")      # the window is full: wait for ACKs to open it
            if deadline is not None and time.monotonic() > deadline:
                raise TcpError(errno.ETIMEDOUT, "send: the peer's window stayed full")
            time.sleep(WINDOW_POLL)

    def recv(self, bufsize: int) -> bytes:
        """Up to `bufsize` bytes; b"" once the peer has closed and everything was read."""
        with self._cv:
            ready = self._cv.wait_for(
                lambda: self._buffer or self._eof or self._error is not None or self._closed,
                self.timeout)
            if self._buffer:
                out = bytes(self._buffer[:bufsize])
                del self._buffer[:bufsize]
                return out
        self._check("recv")
        if self._eof:
            return b""
        if not ready:
            raise TcpError(errno.ETIMEDOUT, "recv: nothing arrived")
        return b""

    def shutdown(self, how: int) -> None:
        """SHUT_WR (or SHUT_RDWR) sends our FIN once; reading stays possible until the
        peer's FIN."""
        self._check("shutdown")
        if how in (_socket.SHUT_WR, _socket.SHUT_RDWR) and not self._wr_closed:
            self._send_segment(FIN, b"")
            self._wr_closed = True

    def close(self) -> None:
        """Send our FIN if not yet sent, wait (up to the timeout, 2 s when none) for the
        peer's FIN and for ours to be acknowledged, then remove the connection."""
        if self._closed:
            return
        try:
            if self._error is None and self.stack.error is None:
                if not self._wr_closed:
                    self.shutdown(_socket.SHUT_WR)
                self._await_close(2.0 if self.timeout is None else self.timeout)
                time.sleep(TIME_WAIT)
        finally:
            self._closed = True
            self.stack._forget(self.key)
            with self._cv:
                self._cv.notify_all()

    def _await_close(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.stack.connection(self)
            if entry is None:
                return
            if self._eof and entry["snd_una"] == entry["snd_nxt"]:
                return
            time.sleep(0.001)
        self.abort()

    def abort(self) -> None:
        """Reset the connection (RST to the peer) and remove it."""
        if self._closed:
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


__all__ = ["EtranRuntimeError", "TcpError", "TcpListener", "TcpSocket", "TcpStack"]

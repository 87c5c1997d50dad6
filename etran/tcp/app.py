"""etran's TCP for an application process: sockets served by its host's daemon.

    # inside a host of `etran up etran/transports/tcp.py` (`ip netns exec etran-<id>-a ...`),
    # as any user: the daemon holds the data path, this process only its sockets
    import etran.tcp
    with etran.tcp.connect(("10.111.0.2", 5001), timeout=5) as sock:
        sock.sendall(b"hello")
        print(sock.recv(100))

    with etran.tcp.listen(5001) as listener:
        conn, peer = listener.accept()

The calls have the socket module's shape (`send`, `sendall`, `recv`, `shutdown`, `close`,
`settimeout`, context managers, `fileno` for select/poll) and its errors, OSError subclasses
with errno: ConnectionRefusedError when the peer resets the open, TimeoutError (ETIMEDOUT),
ConnectionResetError. The host and its daemon are found from the network namespace the
process runs in; `etran.tcp.hostd` describes the daemon and the protocol between them.
This module imports nothing of the data path (no libbpf, no compiler): an application
needs none of it.
"""

from __future__ import annotations

import errno
import json
import os
import select
import socket
from types import TracebackType
from typing import Any

from etran.runtime.busypoll import spin_until
from etran.runtime.hostd import open_channel

MAX_DATA = 65536                  # bytes of data in one D message
MAX_MESSAGE = MAX_DATA + 1        # with its tag
CONNECT_TIMEOUT = 10.0            # a connect that names no timeout
CLOSE_WAIT = 10.0                 # how long close() waits for room for its goodbye
# How long a thread waiting on a channel looks at it before it sleeps (as `TcpStack`'s
# `busy_poll` does with the AF_XDP ring: an idle vCPU's wake-up costs tens of microseconds,
# and a round trip through the daemon has two of them each way)
BUSY_POLL = 0.0005


def _error(code: int, what: str) -> OSError:
    return OSError(code, f"{os.strerror(code)}: {what}")


def _open(request: dict[str, Any], timeout: float | None) -> tuple[socket.socket, dict[str, Any]]:
    return open_channel("tcp", request, socket.SOCK_SEQPACKET, timeout)


def connect(address: tuple[str, int], timeout: float | None = None) -> AppSocket:
    """Open a connection to `address` through this host's daemon. `timeout` bounds the open
    (CONNECT_TIMEOUT when None) and then every blocking call of the socket, as
    `socket.create_connection`'s does."""
    ip, port = address
    chan, reply = _open({"op": "connect", "address": [ip, port],
                         "timeout": timeout or CONNECT_TIMEOUT}, timeout or CONNECT_TIMEOUT)
    sock = AppSocket(chan, tuple(reply["local"]), tuple(reply["peer"]))
    sock.settimeout(timeout)
    return sock


def listen(port: int, backlog: int = 16) -> AppListener:
    """Listen on `port` of this host's address through its daemon."""
    chan, reply = _open({"op": "listen", "port": port, "backlog": backlog}, 10.0)
    return AppListener(chan, tuple(reply["local"]))


class AppSocket:
    """A connection of etran's TCP, served by the host's daemon (see the module)."""

    def __init__(self, chan: socket.socket, local: tuple[Any, ...],
                 peer: tuple[Any, ...]) -> None:
        self._chan = chan
        self._local = (str(local[0]), int(local[1]))
        self._peer = (str(peer[0]), int(peer[1]))
        self._rest = b""
        self._eof = False
        self._error: OSError | None = None
        self._closed = False
        self._poller = select.poll()
        self._poller.register(chan, select.POLLIN)

    def fileno(self) -> int:
        """Readable when data, the end of it or an error is there (for select and poll)."""
        return self._chan.fileno()

    def settimeout(self, timeout: float | None) -> None:
        self._chan.settimeout(timeout)

    def gettimeout(self) -> float | None:
        return self._chan.gettimeout()

    def getpeername(self) -> tuple[str, int]:
        return self._peer

    def getsockname(self) -> tuple[str, int]:
        return self._local

    def _check(self, what: str) -> None:
        """(It reads nothing off the channel: a thread sending while another waits in `recv`,
        as netcat does, must not take the message that one waits for.)"""
        if self._closed:
            raise _error(errno.EBADF, f"{what} on a closed socket")
        if self._error is not None:
            raise self._error

    def _take(self) -> None:
        """Read one message from the daemon into the socket's state."""
        if self._eof or self._error is not None or self._rest:
            return
        spin_until(lambda: self._poller.poll(0), BUSY_POLL)  # then sleep in recv
        try:
            message = self._chan.recv(MAX_MESSAGE)
        except TimeoutError:
            raise _error(errno.ETIMEDOUT, "recv: nothing arrived") from None
        tag, body = message[:1], message[1:]
        if tag == b"D":
            self._rest = body
        elif tag == b"F":
            self._eof = True
        elif tag == b"X":
            failure = json.loads(body)
            self._error = OSError(failure["errno"], failure["error"])
        else:                               # b"": the daemon went away
            self._error = _error(errno.ECONNABORTED, "the host's TCP daemon closed the "
                                 "connection")

    def send(self, data: bytes | bytearray | memoryview) -> int:
        self._check("send")
        chunk = bytes(memoryview(data)[:MAX_DATA])
        try:
            self._chan.send(b"D" + chunk)
        except TimeoutError:
            raise _error(errno.ETIMEDOUT, "send: no room") from None
        except (BrokenPipeError, ConnectionResetError):
            # the daemon ended the relay: the connection failed (its reason waits in the
            # channel, for recv) or the daemon is gone
            raise _error(errno.ECONNRESET, "send: the connection is closed") from None
        return len(chunk)

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            view = view[self.send(view):]

    def recv(self, bufsize: int) -> bytes:
        """Up to `bufsize` bytes; b"" once the peer has closed and everything was read."""
        if self._closed:
            raise _error(errno.EBADF, "recv on a closed socket")
        self._take()
        if self._rest:
            out, self._rest = self._rest[:bufsize], self._rest[bufsize:]
            return out
        if self._error is not None:
            raise self._error
        return b""

    def shutdown(self, how: int) -> None:
        """SHUT_WR (or SHUT_RDWR) sends our FIN; reading stays possible until the peer's."""
        self._check("shutdown")
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            self._chan.send(b"W")

    def close(self) -> None:
        """Close as a Linux socket does: our FIN goes after what was sent, the daemon
        finishes the close. The goodbye (C) has to get into the channel (a channel closed
        without it is an application that died, and the connection is reset): when data
        sent just before still fills the channel, this waits up to CLOSE_WAIT seconds for
        the daemon to take it."""
        if self._closed:
            return
        self._closed = True
        try:
            self._chan.settimeout(CLOSE_WAIT)   # (at once when there is room)
            self._chan.send(b"C")
        except OSError:
            pass
        self._chan.close()

    def __enter__(self) -> AppSocket:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<etran.tcp.AppSocket {self._local[0]}:{self._local[1]} -> " \
               f"{self._peer[0]}:{self._peer[1]}{' closed' if self._closed else ''}>"


class AppListener:
    """A listening port of etran's TCP, served by the host's daemon."""

    def __init__(self, chan: socket.socket, local: tuple[Any, ...]) -> None:
        self._chan = chan
        self.port = int(local[1])
        self._local = (str(local[0]), self.port)

    def fileno(self) -> int:
        return self._chan.fileno()

    def settimeout(self, timeout: float | None) -> None:
        self._chan.settimeout(timeout)

    def getsockname(self) -> tuple[str, int]:
        return self._local

    def accept(self) -> tuple[AppSocket, tuple[str, int]]:
        try:
            message, fds, _flags, _addr = socket.recv_fds(self._chan, MAX_MESSAGE, 1)
        except TimeoutError:
            raise _error(errno.ETIMEDOUT, f"accept on port {self.port}") from None
        if not message.startswith(b"A") or not fds:
            for fd in fds:
                os.close(fd)
            raise _error(errno.ECONNABORTED, "the host's TCP daemon closed the listener")
        info = json.loads(message[1:])
        chan = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, fileno=fds[0])
        sock = AppSocket(chan, tuple(info["local"]), tuple(info["peer"]))
        return sock, sock.getpeername()

    def close(self) -> None:
        try:
            self._chan.send(b"C", socket.MSG_DONTWAIT)
        except OSError:
            pass
        self._chan.close()

    def __enter__(self) -> AppListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["AppListener", "AppSocket", "connect", "listen"]

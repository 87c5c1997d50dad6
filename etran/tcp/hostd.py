"""etran's TCP daemon: serves the applications of a host (etran.runtime.hostd says why and
how daemons run; `etran.tcp.app` is the applications' side).

The protocol, on AF_UNIX SOCK_SEQPACKET (messages keep their bounds and can carry fds); one
channel per socket:

* the application's first message is a JSON request, ``{"op": "connect", "address": [ip,
  port], "timeout": s}`` or ``{"op": "listen", "port": p, "backlog": n}``; the reply is
  ``{"ok": true, "local": [ip, port], "peer": [ip, port]}`` or ``{"ok": false, "errno": n,
  "error": text}``;
* then, on a connection's channel, messages of a tag byte and a body: ``D`` data (both
  ways), ``W`` (application: shut down for writing, our FIN), ``C`` (application: closing),
  ``F`` (daemon: the peer's FIN, no more data), ``X`` + JSON ``{"errno", "error"}`` (daemon:
  the connection failed);
* on a listener's channel, for each connection accepted, ``A`` + JSON ``{"local", "peer"}``
  with the application's end of a new connection channel passed as SCM_RIGHTS.

A channel closed after ``C`` closes its connection (FIN, the stack finishes the close); one
closed without it, the application having died, resets it (RST), as Linux does for a
process that exits with data it never read.
"""

from __future__ import annotations

import array
import contextlib
import errno
import json
import socket
import threading

from etran.runtime import runs
from etran.runtime.hostd import (
    ACCEPT_LOOK,
    REQUEST_ERRORS,
    StackDaemon,
    failure,
    refusal,
    socket_path,
)
from etran.runtime.hostd import message as tagged
from etran.tcp.app import CONNECT_TIMEOUT, MAX_DATA, MAX_MESSAGE
from etran.tcp.stack import TcpListener, TcpSocket, TcpStack


class TcpDaemon(StackDaemon):
    """Serves the applications of one host of a run (see the module's docstring)."""

    stack: TcpStack

    def __init__(self, record: runs.RunRecord, host: str) -> None:
        super().__init__(TcpStack.in_run(record, host), socket_path(record, host, "tcp"),
                         socket.SOCK_SEQPACKET)

    def _channel(self, chan: socket.socket) -> None:
        """One application socket: its request, then its data or its accepted connections."""
        try:
            request = json.loads(chan.recv(MAX_MESSAGE))
            op = request["op"]
            if op == "connect":
                ip, port = request["address"]
                timeout = request.get("timeout") or CONNECT_TIMEOUT
                sock = self.stack.connect((str(ip), int(port)), timeout=float(timeout))
                chan.send(json.dumps({"ok": True, "local": sock.getsockname(),
                                      "peer": sock.getpeername()}).encode())
                Relay(sock, chan).run()
            elif op == "listen":
                listener = self.stack.listen(int(request["port"]), int(request.get("backlog", 16)))
                chan.send(json.dumps({"ok": True, "local": [self.stack.host.ip, listener.port],
                                      "peer": None}).encode())
                self._accept_for(listener, chan)
            else:
                raise OSError(errno.EINVAL, f"unknown request {op!r}")
        except REQUEST_ERRORS as exc:
            with contextlib.suppress(OSError):
                chan.send(json.dumps(refusal(exc)).encode())
            chan.close()

    def _accept_for(self, listener: TcpListener, chan: socket.socket) -> None:
        """Hand each connection the listener accepts to the application, on a channel of its
        own, until the application closes the listener's channel."""
        closed = threading.Event()
        once = threading.Lock()

        def close() -> None:            # once: the port may be listened on again at once
            if once.acquire(blocking=False):
                closed.set()
                listener.close()

        def watch() -> None:            # the application's end: closing it closes the listener
            with contextlib.suppress(OSError):
                while chan.recv(MAX_MESSAGE) not in (b"", b"C"):
                    pass
            close()
        threading.Thread(target=watch, daemon=True).start()
        listener.settimeout(ACCEPT_LOOK)
        try:
            while not closed.is_set() and not self.service.stopped.is_set():
                try:
                    sock, peer = listener.accept()
                except TimeoutError:
                    continue
                ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                try:
                    chan.sendmsg([tagged(b"A", {"local": sock.getsockname(), "peer": peer})],
                                 [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                   array.array("i", [theirs.fileno()]))])
                except OSError:
                    sock.abort()                # the application is gone
                    ours.close()
                    break
                finally:
                    theirs.close()
                threading.Thread(target=Relay(sock, ours).run, daemon=True).start()
        finally:
            close()
            chan.close()


class Relay:
    """One connection between its TCP socket and its application's channel: the calling
    thread carries the application's messages to the socket, a second thread the socket's
    data to the application. A full channel stops the second thread, which stops reading
    the socket, whose window then closes: the application's pace is the peer's."""

    def __init__(self, sock: TcpSocket, chan: socket.socket) -> None:
        self.sock = sock
        self.chan = chan

    def run(self) -> None:
        sock, chan = self.sock, self.chan
        sock.settimeout(None)
        down = threading.Thread(target=self._down, daemon=True)
        down.start()
        # (this thread sleeps between the application's messages: spinning here too, beside
        # the application's spin and the other thread's in `recv`, was slower, three
        # spinners on two CPUs)
        graceful = False
        try:
            while True:
                try:
                    message = chan.recv(MAX_MESSAGE)
                except OSError:             # (ECONNRESET: it died with our data unread)
                    break
                tag = message[:1]
                if tag == b"D":
                    sock.sendall(message[1:])
                elif tag == b"W":
                    sock.shutdown(socket.SHUT_WR)
                elif tag == b"C":
                    graceful = True
                    break
                elif not message:           # closed without a goodbye: it died
                    break
        except OSError as exc:              # the connection failed under a send: tell it
            with contextlib.suppress(OSError):
                chan.send(tagged(b"X", failure(exc)))
            graceful = True                 # (nothing left to reset)
        finally:
            if graceful:
                sock.close()
            else:
                sock.abort()                # the application died: RST, as Linux does
            chan.close()

    def _down(self) -> None:
        sock, chan = self.sock, self.chan
        try:
            while data := sock.recv(MAX_DATA):
                chan.send(b"D" + data)
            chan.send(b"F")
        except OSError as exc:
            with contextlib.suppress(OSError):
                if sock.stack.error is None and not sock._closed:
                    chan.send(tagged(b"X", failure(exc)))

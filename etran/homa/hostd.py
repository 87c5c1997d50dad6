"""etran's Homa daemon: serves the RPCs of a host's applications (etran.runtime.hostd says
why and how daemons run; `etran.homa.app` is the applications' side and describes the
frames on the channel).

One channel per application client or server. A client's requests become calls of one
`HomaStack.client()` (its own port), each answered when its future resolves; a client that
goes away has its calls abandoned, so their RPCs leave the data path. A server's channel
gets the requests of its port as they complete, and its replies go out as the stack's; a
server that goes away closes its port (requests still arriving then meet a port nobody
serves, and their clients' timers end them).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import socket
import threading
from concurrent.futures import Future
from typing import Any

from etran.homa.app import read_frame, send_frame
from etran.homa.stack import Client, HomaStack, Request, Server
from etran.runtime import runs
from etran.runtime.hostd import (
    REQUEST_ERRORS,
    StackDaemon,
    failure,
    read_line,
    refusal,
    socket_path,
)

RECEIVE_LOOK = 0.2                # how often a server's feeder looks whether to stop


class HomaDaemon(StackDaemon):
    stack: HomaStack

    def __init__(self, record: runs.RunRecord, host: str) -> None:
        super().__init__(HomaStack.in_run(record, host), socket_path(record, host, "homa"),
                         socket.SOCK_STREAM)

    def _channel(self, chan: socket.socket) -> None:
        try:
            request = json.loads(read_line(chan))
            if request["op"] == "client":
                client = self.stack.client()
                self._answer(chan, {"ok": True, "port": client.port})
                self._serve_client(client, chan)
            elif request["op"] == "server":
                server = self.stack.server(int(request["port"]))
                self._answer(chan, {"ok": True, "port": server.port})
                self._serve_server(server, chan)
            else:
                raise OSError(errno.EINVAL, f"unknown request {request['op']!r}")
        except REQUEST_ERRORS as exc:
            with contextlib.suppress(OSError):
                self._answer(chan, refusal(exc))
        finally:
            chan.close()

    @staticmethod
    def _answer(chan: socket.socket, reply: dict[str, Any]) -> None:
        chan.sendall(json.dumps(reply).encode() + b"\n")

    def _serve_client(self, client: Client, chan: socket.socket) -> None:
        """The application's requests, as calls; their outcomes back as they come."""
        lock = threading.Lock()
        calls: dict[int, Future[bytes]] = {}

        def done(call_id: int, future: Future[bytes]) -> None:
            with lock:
                calls.pop(call_id, None)
            with contextlib.suppress(OSError):
                exc = future.exception()
                if exc is None:
                    send_frame(chan, send_lock, b"R", {"id": call_id}, future.result())
                else:
                    why = failure(exc) if isinstance(exc, OSError) else \
                        {"errno": errno.EIO, "error": str(exc)}
                    send_frame(chan, send_lock, b"X", {"id": call_id, **why})
        send_lock = threading.Lock()
        stream = chan.makefile("rb")
        try:
            while (frame := read_frame(stream)) is not None:
                tag, header, payload = frame
                call_id = int(header["id"])
                if tag == b"A":
                    with lock:
                        future = calls.pop(call_id, None)
                    if future is not None:
                        client.abandon(future, errno.ETIMEDOUT)
                    continue
                ip, port = header["address"]
                try:
                    future = client.call_async((str(ip), int(port)), payload)
                except OSError as exc:
                    send_frame(chan, send_lock, b"X", {"id": call_id, **failure(exc)})
                    continue
                with lock:
                    calls[call_id] = future
                future.add_done_callback(functools.partial(done, call_id))
        except (OSError, ValueError):
            pass                            # the application went away
        finally:
            with lock:
                left = list(calls.values())
            for future in left:             # nobody waits for them: out of the data path
                client.abandon(future)

    def _serve_server(self, server: Server, chan: socket.socket) -> None:
        """Requests of the port to the application as they complete; its replies out."""
        stop = threading.Event()
        send_lock = threading.Lock()
        lock = threading.Lock()
        waiting: dict[int, Request] = {}
        ids = iter(range(1, 1 << 62))

        def feed() -> None:
            while not stop.is_set():
                try:
                    request = server.receive(timeout=RECEIVE_LOOK)
                except TimeoutError:
                    continue
                request_id = next(ids)
                with lock:
                    waiting[request_id] = request
                try:
                    send_frame(chan, send_lock, b"Q", {"id": request_id,
                                                       "peer": [request.peer, request.peer_port]},
                               request.payload)
                except OSError:
                    return
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        stream = chan.makefile("rb")
        try:
            while (frame := read_frame(stream)) is not None:
                _tag, header, payload = frame
                with lock:
                    request = waiting.pop(int(header["id"]), None)
                if request is not None:
                    with contextlib.suppress(OSError):
                        server.reply(request, payload)
        except (OSError, ValueError):
            pass
        finally:
            stop.set()
            feeder.join(5)
            server.close()

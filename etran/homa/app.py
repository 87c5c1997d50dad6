"""etran's Homa for an application process: RPCs served by its host's daemon.

    # inside a host of `etran up etran/transports/homa.py`, as any user
    import etran.homa.app as homa
    with homa.client() as client:
        response = client.call(("10.111.0.2", 7000), b"request", timeout=5)

    with homa.server(7000) as server:
        request = server.receive()
        server.reply(request, b"response")

The calls are those of `HomaStack.client()` and `.server(port)` (`call_async` gives a
Future, many RPCs go at once) with the same errors (TimeoutError, ConnectionAbortedError,
OSError with errno). `etran.runtime.hostd` says how daemons run; `etran.homa.hostd` is the
daemon's side of the channel. This module imports nothing of the data path.

The channel is a Unix stream; each frame is a tag byte, the length of a JSON header (4
bytes, network order), the header, and the payload (`header["size"]` bytes):

* client: ``Q`` {id, address, size} + request, ``A`` {id} (abandon); the daemon answers
  ``R`` {id, size} + response or ``X`` {id, errno, error};
* server: the daemon sends ``Q`` {id, peer, size} + request; the application ``R`` {id,
  size} + response.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import queue
import socket
import struct
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, BinaryIO

from etran.homa.handling import Handled
from etran.runtime.hostd import open_channel

_HEAD = struct.Struct("!cI")


def send_frame(chan: socket.socket, lock: threading.Lock, tag: bytes, header: dict[str, Any],
               payload: bytes = b"") -> None:
    body = json.dumps({**header, "size": len(payload)}).encode()
    with lock:
        chan.sendall(_HEAD.pack(tag, len(body)) + body + payload)


def read_frame(stream: BinaryIO) -> tuple[bytes, dict[str, Any], bytes] | None:
    """The next frame, or None at the end of the channel."""
    head = stream.read(_HEAD.size)
    if len(head) < _HEAD.size:
        return None
    tag, length = _HEAD.unpack(head)
    header = json.loads(stream.read(length))
    payload = stream.read(header["size"]) if header["size"] else b""
    if len(payload) != header["size"]:
        return None
    return tag, header, payload


def _error(code: int, what: str) -> OSError:
    return OSError(code, f"{os.strerror(code)}: {what}")


def _gone() -> OSError:
    return _error(errno.ECONNABORTED, "the host's Homa daemon closed the channel")


class AppClient:
    """Sends requests and waits for responses, many at once, through the host's daemon."""

    def __init__(self) -> None:
        self._chan, reply = open_channel("homa", {"op": "client"}, socket.SOCK_STREAM, 10.0)
        self.port = int(reply["port"])
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._calls: dict[int, Future[bytes]] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stream = self._chan.makefile("rb")
        try:
            while (frame := read_frame(stream)) is not None:
                tag, header, payload = frame
                with self._lock:
                    future = self._calls.pop(header["id"], None)
                if future is None or future.done():
                    continue
                if tag == b"R":
                    future.set_result(payload)
                else:
                    future.set_exception(OSError(header["errno"], header["error"]))
        except (OSError, ValueError):
            pass
        with self._lock:
            left, self._calls = list(self._calls.values()), {}
        for future in left:
            if not future.done():
                future.set_exception(_gone())

    def call_async(self, address: tuple[str, int], request: bytes) -> Future[bytes]:
        future: Future[bytes] = Future()
        call_id = next(self._ids)
        with self._lock:
            self._calls[call_id] = future
        try:
            send_frame(self._chan, self._send_lock, b"Q",
                       {"id": call_id, "address": [address[0], int(address[1])]}, request)
        except OSError:
            with self._lock:
                self._calls.pop(call_id, None)
            raise _gone() from None
        future.call_id = call_id  # type: ignore[attr-defined]
        return future

    def call(self, address: tuple[str, int], request: bytes,
             timeout: float | None = 5.0) -> bytes:
        """Send `request` and wait for the response; TimeoutError after `timeout` seconds
        (the RPC is abandoned)."""
        future = self.call_async(address, request)
        try:
            return future.result(timeout)
        except TimeoutError:
            self.abandon(future)
            raise _error(errno.ETIMEDOUT, f"call {address[0]}:{address[1]}: no response "
                         f"within {timeout} s") from None

    def abandon(self, future: Future[bytes]) -> None:
        call_id = getattr(future, "call_id", None)
        with self._lock:
            self._calls.pop(call_id, None)  # type: ignore[arg-type]
        try:
            send_frame(self._chan, self._send_lock, b"A", {"id": call_id})
        except OSError:
            pass

    def close(self) -> None:
        self._chan.close()
        self._reader.join(5)

    def __enter__(self) -> AppClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class AppRequest:
    """A request a server received: answer it with `AppServer.reply(request, response)`."""

    peer: str
    peer_port: int
    port: int
    id: int
    payload: bytes


class AppServer(Handled):
    """Receives requests on a port and answers them, through the host's daemon. With
    `handler`, each request is passed to it on the thread that reads the channel, as it
    arrives, and what it returns is the response (None: reply later, from any thread), as
    `etran.homa.stack.Server`'s handler: no application thread waits to be woken. What a
    handler that raises does: `etran.homa.handling`."""

    # REQUEST_ERRORS stays empty: a reply fails only when the channel is gone, and then
    # the thread reading it ends

    def __init__(self, port: int,
                 handler: Callable[[AppRequest], bytes | None] | None = None) -> None:
        self._chan, _reply = open_channel("homa", {"op": "server", "port": port},
                                          socket.SOCK_STREAM, 10.0)
        self.port = port
        self._init_handler(handler)
        self._send_lock = threading.Lock()
        self._queue: queue.SimpleQueue[AppRequest | None] = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._ended = False

    def _read(self) -> None:
        stream = self._chan.makefile("rb")
        try:
            while (frame := read_frame(stream)) is not None:
                _tag, header, payload = frame
                peer = header["peer"]
                request = AppRequest(str(peer[0]), int(peer[1]), self.port,
                                     int(header["id"]), payload)
                if self.handler is None:
                    self._queue.put(request)
                else:
                    self._answer(request)
        except (OSError, ValueError):
            pass
        self._queue.put(None)

    def receive(self, timeout: float | None = None) -> AppRequest:
        """The next whole request; TimeoutError when none came within `timeout`."""
        self._refuse_receive()
        if self._ended:
            raise _gone()
        try:
            request = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise _error(errno.ETIMEDOUT, f"receive on port {self.port}") from None
        if request is None:
            self._ended = True
            raise _gone()
        return request

    def reply(self, request: AppRequest, response: bytes) -> None:
        try:
            send_frame(self._chan, self._send_lock, b"R", {"id": request.id}, response)
        except OSError:
            raise _gone() from None

    def close(self) -> None:
        self._chan.close()
        self._reader.join(5)

    def __enter__(self) -> AppServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def client() -> AppClient:
    """A Homa client of this host, served by its daemon."""
    return AppClient()


def server(port: int, handler: Callable[[AppRequest], bytes | None] | None = None) -> AppServer:
    """A Homa server on `port` of this host, served by its daemon (`handler`: see
    `AppServer`)."""
    return AppServer(port, handler)

"""A Homa server's handler: what both servers do with one (`etran.homa.stack.Server`, on
the library's receiving thread, and `etran.homa.app.AppServer`, on the thread that reads
its channel to the daemon). Imports nothing of the data path.

A handler gets each request as it arrives and returns the response, or None to reply
later from any thread. One that raises leaves its request unanswered (the client's call
times out): the server counts it (`handler_errors`, `last_error`), writes one line to
stderr and goes on with the next request; `receive()` on such a server is refused, since it
would wait for ever.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


class Handled:
    """The handler's half of a server; the server gives `port` and `reply`, and says in
    `REQUEST_ERRORS` which errors of `reply` concern only the request being answered (the
    others end the thread that called the handler)."""

    REQUEST_ERRORS: tuple[type[Exception], ...] = ()
    port: int

    def _init_handler(self, handler: Callable[[Any], bytes | None] | None) -> None:
        self.handler = handler
        self.handler_errors = 0
        self.last_error: Exception | None = None

    def reply(self, request: Any, response: bytes) -> None:
        raise NotImplementedError

    def _answer(self, request: Any) -> None:
        """Pass `request` to the handler and send what it returns."""
        assert self.handler is not None
        try:
            response = self.handler(request)
        except Exception as exc:   # the application's: it must not stop the calling thread
            self._failed(request, "raised", exc)
            return
        if response is not None:
            try:
                self.reply(request, response)
            except self.REQUEST_ERRORS as exc:
                self._failed(request, "returned a response that could not be sent:", exc)

    def _failed(self, request: Any, what: str, exc: Exception) -> None:
        self.handler_errors += 1
        self.last_error = exc
        print(f"etran.homa: the handler of port {self.port} {what} {exc!r}; the request from "
              f"{request.peer}:{request.peer_port} is not answered", file=sys.stderr, flush=True)

    def _refuse_receive(self) -> None:
        if self.handler is not None:
            raise ValueError(f"the server of port {self.port} gives its requests to its "
                             "handler: receive() would wait for ever")

"""The Homa library's senders, without a kernel: one message's packets reach egress from
one thread at a time, whichever path sends them (the first send, a GRANT, a RESEND)."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from etran.abi import XDP_TX
from etran.homa.stack import HomaStack, _Outbound
from etran.runtime.hooks import Egress


class _Egress(Egress):
    """Records, for each batch, whether another batch of the same message was in egress
    (an Egress with none of its kernel parts: the library checks the kind it holds)."""

    def __init__(self) -> None:   # (Egress.__init__ not called: no kernel parts)
        self.inside = 0
        self.overlaps = 0
        self.batches = 0
        self.guard = threading.Lock()

    def send_until_refused(self, frames: list[bytes]) -> tuple[int, int, Any]:
        with self.guard:
            self.inside += 1
            self.overlaps += self.inside > 1
            self.batches += 1
        time.sleep(0.002)                  # egress runs take time; let the threads meet
        with self.guard:
            self.inside -= 1
        return len(frames), XDP_TX, None

    def send(self, frames: list[bytes]) -> int:      # the native path's (NativeEgress.send)
        return self.send_until_refused(frames)[0]


class _Stack:
    def __init__(self, native: bool) -> None:
        self.egress = _Egress()
        self.native = self.egress if native else None


@pytest.mark.parametrize("native", [False, True], ids=["test-run-egress", "native-egress"])
def test_a_resend_never_runs_egress_beside_a_send_of_the_same_message(native: bool) -> None:
    """Egress keeps an RPC's highest byte sent with a compare and a store; a RESEND's
    packets sent beside the message's next packets once left `etran status` showing
    267,400 of 300,000 bytes sent after the server had them all."""
    stack = _Stack(native)
    out = _Outbound(frames=[bytes(64)] * 400, length=400 * 1400, granted=400 * 1400)
    out.next = 200

    def resend() -> None:
        for _ in range(20):
            HomaStack._resend(stack, out, 0, 1400 * 50)   # type: ignore[arg-type]

    def send() -> None:
        for _ in range(20):
            out.next = min(out.next, 380)
            HomaStack._send(stack, out, "request")        # type: ignore[arg-type]
            with out.lock:
                out.next = 200

    threads = [threading.Thread(target=resend), threading.Thread(target=send)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stack.egress.batches >= 40
    assert stack.egress.overlaps == 0

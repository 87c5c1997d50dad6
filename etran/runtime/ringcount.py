"""How many frames wait on an application's AF_XDP ring, as a transport's data path sees it.

A frame the data path hands to the socket is not yet the application's: it waits on the
ring until the library, in Python, takes it. TCP refuses data that would overrun the ring
(it would be lost there after being acknowledged) and Homa grants nothing while the ring is
long (it is the receiver's queue). Both count the same way: ingress adds each frame it
hands over to `handed` (an atomic add, one entry), the library writes how many it has taken
to `taken` (with TCP, also the most that may wait), and the data path reads the difference.

A frame ingress counted and the socket then dropped never reaches the library, so now and
then, when the ring turns out empty, the library's count is set to ingress's. That count is
read before the ring, so that a frame counted after it is not taken for one seen, and only
when the ring looks empty (under load it seldom is).
"""

from __future__ import annotations

import struct

from etran.runtime.afxdp import XskSocket
from etran.runtime.maps import Map

RESYNC = 0.1                    # seconds between resyncs of an empty ring's count
_KEY = bytes(4)                 # both maps have one entry


class RingCount:
    """The library's half: `taken`, written every `tell_every` frames taken, with `limit`
    beside it when the transport's `Taken` holds one (TCP's: the most that may wait)."""

    def __init__(self, handed: Map, taken: Map, xsk: XskSocket, *, tell_every: int = 1,
                 limit: int | None = None) -> None:
        self._handed = handed
        self._taken = taken
        self._xsk = xsk
        self._tell_every = tell_every
        self._layout = struct.Struct("=Q" if limit is None else "=QQ")
        self._limit = () if limit is None else (limit,)
        self._told = 0
        self._synced = 0.0
        self.taken = self.handed()          # nothing waits there yet
        self.tell()

    def handed(self) -> int:
        """How many frames ingress has handed to the socket, ever."""
        raw = self._handed.lookup(_KEY)
        return int.from_bytes(raw[:8], "little") if raw else 0

    def tell(self) -> None:
        """Write what was taken to the data path's `taken`."""
        self._taken.update(_KEY, self._layout.pack(self.taken, *self._limit))
        self._told = self.taken

    def before_recv(self, now: float) -> int | None:
        """Call before taking frames off the ring: ingress's count when a resync is due and
        the ring looks empty, else None (pass it to `after_recv`)."""
        if now - self._synced > RESYNC and not self._xsk.waiting():
            return self.handed()
        return None

    def after_recv(self, counted: int | None, took: int, now: float,
                   empty: bool) -> bool:
        """Count `took` frames of those ingress counted taken off the ring; `empty`: the
        ring gave nothing, so `counted` (from `before_recv`) becomes the count. Whether
        `taken` was written for frames taken."""
        if took:
            self.taken += took
            if self.taken - self._told >= self._tell_every:
                self.tell()
                return True
        elif counted is not None and empty:
            self._synced = now
            self.taken = counted
            self.tell()
        return False

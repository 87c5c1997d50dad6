"""Waiting without sleeping, for a short while.

An idle vCPU of a virtual machine can take tens of microseconds to wake for a frame, about
as long as a whole round trip here (docs/tcp.md, "Busy polling"). A thread that expects
something soon looks for it in a loop first, and sleeps only when that runs out. Both
places that do so (a TCP stack's receiving thread on its AF_XDP ring, an application on its
channel to the host's daemon) use `spin_until`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable


def spin_until(ready: Callable[[], object], seconds: float) -> bool:
    """Whether `ready()` held within `seconds`, asked in a loop that yields the CPU and the
    interpreter lock between looks (sched_yield releases it), so that the process's other
    threads are not held up."""
    now = time.perf_counter
    until = now() + seconds
    while now() < until:
        if ready():
            return True
        os.sched_yield()
    return False

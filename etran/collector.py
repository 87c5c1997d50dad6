"""Pausing Python's cyclic garbage collector around work that makes many long-lived objects
and no reference cycles.

The collector starts a pass every few hundred allocations; objects that survive passes
move to the oldest generation, whose growth starts full passes over the whole process's
heap. Work that builds a large graph of objects which all stay alive until the work is
done (an LLVM module being lowered, the replay's states and checkpoints) frees nothing in
those passes and pays for them: in a process holding a hundred checked programs (a
campaign, `etran fuzz --programs`), more than half of a lowering or a long replay went to
the collector. Reference counting still frees the temporaries as they go.
"""
from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off inside (back on after, if it was on before; nested
    blocks leave it to the outermost)."""
    collect = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collect:
            gc.enable()

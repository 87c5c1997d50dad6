"""The tables `etran.analysis.replay` keeps for speed say what the code they stand for says:
`_backtrack_regs` (what mark_precise does at an instruction without calling
`Explorer.backtrack`) and `Slot.kind` (what stacksafe reads of a slot's bytes)."""
from __future__ import annotations

import itertools
import random

from etran.analysis import replay
from etran.backend.disasm import Insn


def _shortcut(ins: Insn, extra: replay.Extra, regs: int, slots: int) -> tuple[int, int] | None:
    """What mark_precise does at `ins` without the call, or None where it calls backtrack()."""
    mask, kill, gen, kind = replay._backtrack_regs(ins)
    if extra is None:
        if not regs & mask:
            return regs, slots
        if kind <= replay._BT_LOAD:
            return (regs & ~kill) | gen, slots
        return None
    if type(extra) is int and (kind == replay._BT_LOAD or
                               (kind == replay._BT_STORE and not regs & mask)):
        if kind == replay._BT_LOAD:
            return (regs & ~kill, slots | 1 << extra) if regs & mask else (regs, slots)
        if slots >> extra & 1:
            return regs | gen, slots & ~(1 << extra)
        return regs, slots
    return None


def test_the_backtrack_table_does_what_backtrack_does() -> None:
    rnd = random.Random(7)
    checked = 0
    for code, dst, src in itertools.product(range(256), range(11), range(11)):
        ins = Insn(code, dst, src, 0, 0)
        cls = code & 7
        for _ in range(12):
            regs, slots = rnd.getrandbits(11), rnd.getrandbits(6)
            extra: replay.Extra = None
            if cls in (1, 2, 3) and rnd.random() < 0.5:
                extra = rnd.randrange(6)        # a spill or fill
            elif cls in (5, 6) and rnd.random() < 0.5:
                extra = (rnd.getrandbits(10), rnd.getrandbits(6))   # linked scalars
            want = _shortcut(ins, extra, regs, slots)
            if want is not None:
                assert replay.Explorer.backtrack(ins, extra, regs, slots) == want, \
                    (ins, extra, regs, slots)
                checked += 1
    assert checked > 100_000


def test_slot_kinds() -> None:
    for types in itertools.product("imzs", repeat=8):
        kind = replay.Slot(types, replay.NOT_INIT).kind
        assert (kind == replay.SPILL) == all(t == "s" for t in types)
        assert (kind == replay.MISC) == all(t in "mi" for t in types)

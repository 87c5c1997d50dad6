"""Which loops the lowering unrolls, and what each copy of the body sees (etran.lower.unroll).
The kernel side, compiled copies against the interpreter, is tests/kernel/test_unrolled_loops.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from etran.dsl.diagnostics import DiagnosticError, Span
from etran.ir import tir
from etran.ir.types import BOOL, IntType
from etran.lower.context import hook_nodes
from etran.lower.irtext import module_text
from etran.lower.module import lower
from etran.lower.unroll import MAX_TRIPS, fold, substitute, unrolled_values
from etran.pipeline import check_file, check_source, compile_program

DATA = Path(__file__).resolve().parents[1] / "data"
U8 = IntType("u8", 8, False)
I8 = IntType("i8", 8, True)
U32 = IntType("u32", 32, False)
SPAN = Span("x.py", 1, 1, 1, 2)


def loops(program: tir.Program) -> list[tir.Loop]:
    found = [n for n in hook_nodes(program) if isinstance(n, tir.Loop)]
    return sorted(found, key=lambda lp: (lp.span.line, lp.span.col))


def test_the_loops_of_the_corners_program_and_their_counters() -> None:
    values = [unrolled_values(lp) for lp in loops(check_file(DATA / "unrolled_loops.py"))]
    assert values == [list(range(10)), [6, 7], [1, 4, 7, 10], [0, 1, 2, 3], [3, 2, 1, 0],
                      None]   # the last assigns its counter


HEAD = """from etran.dsl import *


class Words(Header):
    w: Array[u16, 8]


def big(words: Words, i: u32) -> u32:
    t: u32 = u32(words.w[0])
""" + "    t = t * 3 + u32(words.w[1]) ^ (t >> 3)\n" * 20 + """    return t


@xdp
def f(pkt: Packet) -> int:
    words = pkt.header(Words, 0)
    if words is None:
        return XDP_PASS
    s: u32 = 0
    n = pkt.len
LOOP
    return XDP_TX if s & 1 != 0 else XDP_PASS
"""


@pytest.mark.parametrize("loop,unrolled", [
    ("    for i in range(8):\n        s += words.w[i]", True),
    ("    for i in range(2, 8, 2):\n        s += words.w[i // 2]", True),
    ("    for i in range(4):\n        w = pkt.header(Words, i * 2)\n"
     "        if w is not None:\n            s += w.w[0]", True),
    (f"    for i in range({MAX_TRIPS}):\n        s += words.w[i & 7]", True),
    (f"    for i in range({MAX_TRIPS + 1}):\n        s += words.w[i & 7]", False),   # too many trips
    ("    for i in range(min(n, 8)):\n        s += words.w[i]", False),   # a runtime stop
    ("    for i in range(8):\n        s += u32(i)", False),               # no index: no gain
    ("    for i in range(4):\n        for j in range(2):\n            s += words.w[i + j]",
     False),                                                         # holds a loop
    ("    for i in range(8):\n        s += words.w[i]\n        i += 1", False),  # assigns it
    ("    for i in range(8):\n        s += big(words, u32(i)) + words.w[i]", False),  # too big
])
def test_which_loops_unroll(loop: str, unrolled: bool) -> None:
    program = check_source(HEAD.replace("LOOP", loop), "f.py")
    outer = loops(program)[0]
    assert (unrolled_values(outer) is not None) == unrolled
    text = module_text(lower(program)[0])
    assert ("for.head" not in text) == unrolled


def test_unrolled_copies_index_at_constant_offsets() -> None:
    """The checksum's ten reads become loads at constant offsets: no index test, no
    second check against the packet's end, no loop; with unrolling off they come back."""
    program = check_file("bench/c/checksum.py")
    text = module_text(lower(program)[0])
    assert "index.ok" not in text and "index.in_packet" not in text and "for.head" not in text
    rolled = module_text(lower(program, unroll=False)[0])
    assert "index.in_packet" in rolled and "for.head" in rolled


def test_fold_follows_the_language_semantics() -> None:
    def c(v: int, t: IntType = U8) -> tir.Const:
        return tir.Const(v, t, SPAN)

    assert fold(tir.Binary("+", c(200), c(100), U8, SPAN)) == 44          # wraps at u8
    assert fold(tir.Binary("//", c(7), c(0), U8, SPAN)) == 0              # x // 0 == 0
    assert fold(tir.Binary("%", c(7), c(0), U8, SPAN)) == 7               # x % 0 == x
    assert fold(tir.Binary("<<", c(1), c(8), U8, SPAN)) == 0              # past the width
    assert fold(tir.Binary(">>", c(-128, I8), c(9), I8, SPAN)) == -1      # the sign fill
    assert fold(tir.Unary("-", c(1), U8, SPAN)) == 255
    assert fold(tir.Convert(c(300, U32), U8, SPAN)) == 44
    assert fold(tir.Convert(c(2), BOOL, SPAN)) == 1
    var = tir.Var("n", U8)
    assert fold(tir.Binary("+", tir.VarRef(var, U8, SPAN), c(1), U8, SPAN)) is None


def test_an_index_past_the_array_stays_a_runtime_index() -> None:
    """In range, the counter's index becomes a constant place; past the array it stays the
    variable, so the access is checked at run time and reads 0 (a constant index is
    taken as inside the array by the lowering)."""
    var = tir.Var("i", U32)
    base = tir.Const(0, U32, SPAN)          # stands for the array's reference
    place = tir.IndexPlace(base, tir.VarRef(var, U32, SPAN), U8, 8, SPAN, in_packet=True)
    inside = substitute(place, var, 7)
    assert isinstance(inside, tir.IndexPlace) and inside.index == tir.Const(7, U32, SPAN)
    past = substitute(place, var, 8)
    assert isinstance(past, tir.IndexPlace) and past.index is place.index
    computed = tir.IndexPlace(base, tir.Binary("-", tir.VarRef(var, U32, SPAN),
                                               tir.Const(1, U32, SPAN), U32, SPAN),
                              U8, 8, SPAN)
    wrapped = substitute(computed, var, 0)   # 0 - 1 wraps to 2**32 - 1: past the array
    assert isinstance(wrapped, tir.IndexPlace) and not isinstance(wrapped.index, tir.Const)
    other = tir.Var("j", U32)
    assert substitute(place, other, 3) is place   # nothing to replace: the same node


def test_a_frame_over_the_limit_is_compiled_again_without_unrolling(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import etran.lower.module as module
    import etran.pipeline as pipeline
    asked: list[tuple[object, object]] = []
    real_lower = module.lower
    real_frames = pipeline._check_frames

    def lower_spy(*args: object, keep_bounds: bool | None = None, unroll: bool = True,
                  **kw: object) -> object:
        asked.append((keep_bounds, unroll))
        return real_lower(*args, keep_bounds=keep_bounds, unroll=unroll, **kw)  # type: ignore[arg-type]

    def frames(program: object, elf: bytes) -> dict[str, tuple[int, int]]:
        if len(asked) < 3:   # the first two builds' frames "over 512 bytes"
            raise DiagnosticError([])
        return real_frames(program, elf)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "lower", lower_spy)
    monkeypatch.setattr(pipeline, "_check_frames", frames)
    obj = compile_program(check_file("bench/c/checksum.py"))
    assert asked == [(True, True), (False, True), (False, False)]
    assert obj.programs[0].insns > 0

"""Tests written for mutants the test suite let survive (issue 11, docs/mutation-report.md).

`scripts/mutation_score.py` applies cosmic-ray's mutants to the lowering, the interpreter,
the integer semantics and the value codec; each test here kills one or more survivors of
its last run, named in the docstring. The kernel cases compare the compiled program with the
interpreter as the fuzzers do, on corners the generators do not reach: a resize that would
leave less than an Ethernet header or more than the test frame holds, a ring buffer filled
within one run.
"""
from __future__ import annotations

import pytest

from etran.abi import MAX_TEST_FRAME, TEST_RUN_HEADROOM, XDP_FRAME_SIZE
from etran.differential.harness import KernelHarness, run_both
from etran.interp.state import MapStore, RunInput, RunResult, frame_input
from etran.ir import tir
from etran.ir.codec import decode, encode, format_value
from etran.pipeline import check_source, compile_source

RESIZE = """from etran.dsl import *


@xdp
def resize(pkt: Packet) -> int:
    if pkt.resize_WHERE(DELTA):
        return XDP_DROP
    return XDP_PASS
"""
HEADROOM = TEST_RUN_HEADROOM - XDP_FRAME_SIZE      # what a test run leaves before the frame


def agreeing_run(source: str, hook: str, inp: RunInput | None = None) -> RunResult:
    """`hook` of `source` run once in the kernel on `inp` (a 64-byte zero frame by default),
    the interpreter asserted to agree with it (as the fuzzers compare them)."""
    compiled = compile_source(source, f"{hook}.py", observe=True)
    with KernelHarness(compiled) as runner:
        k, _, diffs = run_both(runner, hook, inp or frame_input(bytes(64)))
    assert not diffs, diffs
    return k


@pytest.mark.kernel
@pytest.mark.parametrize("where,delta,fits", [
    ("tail", -50, True), ("tail", -51, False),
    ("tail", MAX_TEST_FRAME - 64, True), ("tail", MAX_TEST_FRAME - 63, False),
    ("head", -50, True), ("head", -51, False),
    ("head", HEADROOM, True), ("head", HEADROOM + 1, False),
])
def test_a_resize_to_under_an_ethernet_header_or_past_the_test_frame_fails_in_both(
        kernel: None, where: str, delta: int, fits: bool) -> None:
    """A 64-byte frame shrunk to 14 bytes (an Ethernet header), grown at the end to
    MAX_TEST_FRAME or at the front by all the headroom succeeds; one byte further it fails,
    in the kernel and in the interpreter. The generated programs resize by small amounts
    only, so the fuzzers let these survive: interpreter.py `e_PacketResize`'s `return 0`
    (growth past the headroom) mutated to `return 1`, and state.py `frame_input`'s
    `MAX_TEST_FRAME - len(packet)` mutated to `+` (a test frame's tailroom)."""
    source = RESIZE.replace("WHERE", where).replace("DELTA", str(delta))
    k = agreeing_run(source, "resize")
    assert k.action == (1 if fits else 2)              # XDP_DROP when resized


FLOOD = """from etran.dsl import *


class Ev(Struct):
    seq: u64
    n: u32


events = RingBuf(Ev, max_entries=4096)


@xdp
def flood(pkt: Packet) -> int:
    for i in range(SIZE):
        events.output(Ev(seq=u64(i), n=pkt.len))
    return XDP_PASS
"""


@pytest.mark.kernel
@pytest.mark.parametrize("records", [100, 200])
def test_a_ring_buffer_filled_in_one_run_holds_the_same_records(kernel: None, records: int) -> None:
    """A 4,096-byte ring takes 170 records of 16 bytes (each with its 8-byte header): 200
    outputs in one run fill it. Kills interpreter.py's `(size + 7) // 8 * 8` mutated to
    `* 7` and `RINGBUF_HEADER // (size + 7)` (the space a record takes)."""
    k = agreeing_run(FLOOD.replace("SIZE", str(records)), "flood")
    assert len(k.ringbuf["events"]) == min(records, 4096 // 24)


ODD = """from etran.dsl import *


class Ev(Struct):
    a: u32
    b: u32
    c: u32


events = RingBuf(Ev, max_entries=4096)


@xdp
def flood(pkt: Packet) -> int:
    for i in range(200):
        events.output(Ev(a=u32(i), b=pkt.len, c=7))
    return XDP_PASS
"""


@pytest.mark.kernel
def test_a_record_not_a_multiple_of_8_bytes_takes_its_size_rounded_up(kernel: None) -> None:
    """A 12-byte record takes 8 + 16 bytes of the ring, so 170 fit in 4,096 (one byte short
    of a whole ring). Kills interpreter.py's `(size + 7) // 8 * 8` mutated to `(size | 7)`
    (12 | 7 = 15: 8 bytes of value, 256 records), which a record of a multiple of 8 cannot."""
    k = agreeing_run(ODD, "flood")
    assert len(k.ringbuf["events"]) == 4095 // 24


EXACT = """from etran.dsl import *


class Ev(Struct):
    seq: u64


events = RingBuf(Ev, max_entries=4096)


@xdp
def flood(pkt: Packet) -> int:
    for i in range(300):
        if not events.output(Ev(seq=u64(i))):
            return XDP_DROP
    return XDP_PASS
"""


@pytest.mark.kernel
def test_a_ring_buffer_never_holds_its_whole_size(kernel: None) -> None:
    """Found by the generated ring-buffer floods: 16-byte records (8 bytes of value, 8 of
    header) would fill a 4,096-byte ring exactly at 256, but the kernel refuses the 256th
    (its producer stays less than a whole ring ahead of the consumer); the interpreter
    accepted it. Both now keep 255 records and drop the frame at the 256th output."""
    k = agreeing_run(EXACT, "flood")
    assert len(k.ringbuf["events"]) == 255
    assert k.action == 1                                # XDP_DROP


STRUCTS = """from etran.dsl import *


class Slot(Struct):
    id: u16
    size: u32


class Table(Struct):
    lock: SpinLock
    slots: Array[Slot, 3]
    total: u64


table = ArrayMap(Table, max_entries=1)
per_cpu = PerCpuArray(Slot, max_entries=1)


@xdp
def touch(pkt: Packet) -> int:
    return XDP_PASS
"""


def _program() -> tir.Program:
    return check_source(STRUCTS, "structs.py")


def test_codec_pads_a_short_array_of_structs_and_zeroes_a_spin_lock() -> None:
    """codec.py: `[{}] * (t.length - len(value))` mutated to `<<` (too many structs
    padded, the value too long) and the SpinLock's `buf[offset:offset + t.size]` mutated to
    `>>` (zero bytes inserted instead of written: a lock named in the value)."""
    t = _program().map("table").value
    assert t is not None
    raw = encode(t, {"slots": [{"id": 7, "size": 9}], "total": 5})
    assert len(raw) == t.size
    assert encode(t, {"lock": 1, "slots": [{"id": 7, "size": 9}], "total": 5}) == raw
    assert decode(t, raw) == {"slots": [{"id": 7, "size": 9}, {"id": 0, "size": 0},
                                        {"id": 0, "size": 0}], "total": 5}


def test_format_value_shows_lists() -> None:
    """codec.py `format_value`: the list case's `+ "]"` mutated to `& "]"`."""
    assert format_value({"a": [1, 2], "b": 3}) == "{a: [1, 2], b: 3}"
    assert format_value([1, [2, 3]], compact=True) == "[1,[2,3]]"


def test_one_value_for_a_per_cpu_map_is_every_cpus() -> None:
    """state.py `set_raw`: one value for a per-CPU map stands for every CPU's
    (`[value] * self.ncpu` mutated to `&`)."""
    program = _program()
    store = MapStore(program, ncpu=3)
    slot = program.map("per_cpu").value
    assert slot is not None
    value = encode(slot, {"id": 1, "size": 2})
    store.set_raw("per_cpu", bytes(4), value)
    assert store["per_cpu"].entries[bytes(4)] == [bytearray(value)] * 3


def test_a_snapshot_reads_spin_lock_bytes_as_zero() -> None:
    """The kernel shows SpinLock and Timer fields as zero to user space, whatever bytes an
    update gave them; so does the interpreter's snapshot (state.py `special_ranges`: `if t
    is None` mutated to `is not None`, which finds no kernel-owned range in a struct)."""
    program = _program()
    store = MapStore(program)
    t = program.map("table").value
    assert t is not None
    store.set_raw("table", bytes(4), b"\xff" * t.size)
    (value,) = store.snapshot()["table"].values()
    lock = next(f for f in t.fields if f.name == "lock")
    assert value[lock.offset:lock.offset + lock.type.size] == bytes(lock.type.size)
    assert value[lock.offset + lock.type.size:] == b"\xff" * (t.size - lock.type.size)


ALL_ONES_COUNTS = """from etran.dsl import *


class Out(Struct):
    a: u32
    b: u64
    c: i32
    d: i16
    e: u8


outs = ArrayMap(Out, max_entries=1)


@xdp
def shift(pkt: Packet) -> int:
    o = outs.get(0)
    if o is None:
        return XDP_ABORTED
    x = pkt.len | 0x80000000
    o.a = x >> u8(255)
    o.b = u64(x) << u16(65535)
    o.c = i32(x) >> i8(-1)
    o.d = i16(x) << u32(0xFFFFFFFF)
    o.e = u8(x) >> i64(-1)
    return XDP_PASS
"""


@pytest.mark.kernel
def test_a_constant_count_with_every_bit_set_is_past_the_width(kernel: None) -> None:
    """lower/expressions.py `shift_op`: a constant count's bit pattern `& ((1 << w) - 1)`
    mutated to `%`, which turns a count of all ones (255 at u8) into 0: no shift at all
    instead of 0 (or the sign's fill)."""
    k = agreeing_run(ALL_ONES_COUNTS, "shift")
    (raw,) = k.maps.snapshot()["outs"].values()
    t = k.maps.program.map("outs").value
    assert t is not None
    assert decode(t, raw) == {"a": 0, "b": 0, "c": -1, "d": 0, "e": 0}


LOCK_AT_4 = """from etran.dsl import *


class Entry(Struct):
    count: u32
    lock: SpinLock
    total: u64


entries = ArrayMap(Entry, max_entries=1)


@xdp
def touch(pkt: Packet) -> int:
    return XDP_PASS
"""


def test_a_snapshot_zeroes_a_spin_lock_that_does_not_start_a_word() -> None:
    """state.py `special_ranges`: `f.offset + f.type.size` mutated to `|`, which is the same
    for a lock at offset 0 or 8 (0 | 4 = 4) but gives the empty range (4, 4) for one at 4."""
    program = check_source(LOCK_AT_4, "lock4.py")
    store = MapStore(program)
    t = program.map("entries").value
    assert t is not None
    lock = next(f for f in t.fields if f.name == "lock")
    assert lock.offset == 4
    store.set_raw("entries", bytes(4), b"\xff" * t.size)
    (value,) = store.snapshot()["entries"].values()
    assert value[:4] == b"\xff" * 4 and value[4:8] == bytes(4) and value[8:] == b"\xff" * 8


OPS = ["+", "-", "*", "//", "%", "&", "|", "^", "<<", ">>"]


def test_untyped_constants_fold_as_python_integers() -> None:
    """Named constants computed from two literals are exact Python integers (semantics.py
    `exact_binary`: `a - b` mutated to `a | b` survived: no test subtracts two literals
    whose difference differs from their bitwise or)."""
    source = ("from etran.dsl import *\n\n"
              + "".join(f"C{i} = 20 {op} 6\n" for i, op in enumerate(OPS))
              + "\n\n@xdp\ndef f(pkt: Packet) -> int:\n    return XDP_PASS\n")
    constants = check_source(source, "constants.py").constants
    expected = [20 + 6, 20 - 6, 20 * 6, 20 // 6, 20 % 6, 20 & 6, 20 | 6, 20 ^ 6, 20 << 6, 20 >> 6]
    assert [constants[f"C{i}"] for i in range(len(OPS))] == expected


@pytest.mark.kernel
def test_a_run_input_s_default_headroom_is_the_test_run_s(kernel: None) -> None:
    """A RunInput made without `frame_input` still has the headroom a kernel test run gives:
    growing the head by all of it succeeds in both, one byte more fails in both. Kills
    state.py's `DEFAULT_HEADROOM = TEST_RUN_HEADROOM - XDP_FRAME_SIZE` mutated to `>>`
    (seed-13 sample: no test built an input without `frame_input`)."""
    for delta, fits in ((HEADROOM, True), (HEADROOM + 1, False)):
        source = RESIZE.replace("WHERE", "head").replace("DELTA", str(delta))
        k = agreeing_run(source, "resize", RunInput(packet=bytes(64)))
        assert k.action == (1 if fits else 2)


def test_codec_reads_only_integers_and_dotted_quads_for_32_bits() -> None:
    """A string that is no integer is a CodecError that says so, not Python's ValueError;
    a dotted quad is an address only for a 32-bit big-endian field. Kills codec.py's
    `except ValueError:` replaced, and `t.bits == 32` mutated to `<=` (seed-13 sample)."""
    from etran.ir.codec import CodecError, pack_into
    from etran.ir.types import BE_TYPES, INT_TYPES
    buf = bytearray(8)
    with pytest.raises(CodecError, match="expected an integer, got 'abc'"):
        pack_into(buf, 0, INT_TYPES["u32"], "abc")
    with pytest.raises(CodecError, match=r"expected an integer, got '1\.2\.3\.4'"):
        pack_into(buf, 0, BE_TYPES["be16"], "1.2.3.4")
    pack_into(buf, 0, BE_TYPES["be32"], "1.2.3.4")
    assert buf[:4] == bytes([1, 2, 3, 4])


def test_untyped_constants_with_a_zero_operand() -> None:
    """`20 + 0` and the like fold; `20 // 0` and `20 % 0` are a `constant` diagnostic, not
    a crash. Kills semantics.py `exact_binary`'s `if op in ("//", "%") and b == 0` mutated
    to `if not op in ...` (seed-13 sample: no test folded two literals with a zero)."""
    from etran.dsl.diagnostics import DiagnosticError
    others = [op for op in OPS if op not in ("//", "%")]
    source = ("from etran.dsl import *\n\n"
              + "".join(f"C{i} = 20 {op} 0\n" for i, op in enumerate(others))
              + "\n\n@xdp\ndef f(pkt: Packet) -> int:\n    return XDP_PASS\n")
    constants = check_source(source, "constants.py").constants
    assert [constants[f"C{i}"] for i in range(len(others))] == [
        {"+": 20, "-": 20, "*": 0, "&": 0, "|": 20, "^": 20, "<<": 20, ">>": 20}[op] for op in others]
    for op in ("//", "%"):
        bad = f"from etran.dsl import *\n\nC = 20 {op} 0\n"
        with pytest.raises(DiagnosticError, match=f"constant `{op}` by zero"):
            check_source(bad, "constants.py")

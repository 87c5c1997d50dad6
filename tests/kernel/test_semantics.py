"""Integer semantics at their edges: the kernel agrees with the interpreter on every corner.

One program per type computes every operator on two operands read from a map
and stores the results in the map; the operands are the values where engines
classically diverge (zero divisors, MIN // -1, shifts by the width and more,
negative shift counts, wrap-around, sign and zero extension). The
interpreter's results are also checked against the table in docs/language.md.
"""
from __future__ import annotations

import itertools

import pytest

from etran.differential.harness import KernelHarness, compare
from etran.interp.interpreter import Interpreter
from etran.interp.state import MapStore, frame_input
from etran.ir import codec
from etran.pipeline import check_source, compile_program

OPS = [("add", "+"), ("sub", "-"), ("mul", "*"), ("div", "//"), ("mod", "%"), ("band", "&"),
       ("bor", "|"), ("bxor", "^"), ("shl", "<<"), ("shr", ">>")]


def program_for(t: str) -> str:
    fields = "\n".join(f"    {name}: {t}" for name, _ in OPS)
    body = "\n".join(f"    r.{name} = r.a {op} r.b" for name, op in OPS)
    return f'''
from etran.dsl import *

class Row(Struct):
    a: {t}
    b: {t}
    count: u8
{fields}
    lt: bool
    neg: {t}
    inv: {t}
    wide: i64
    uwide: u64
    narrow: u8
    shl_by_count: {t}

rows = ArrayMap(Row, max_entries=1)

@xdp
def compute(pkt: Packet) -> int:
    r = rows.get(0)
    if r is None:
        return XDP_ABORTED
{body}
    r.lt = r.a < r.b
    r.neg = -r.a
    r.inv = ~r.a
    r.wide = i64(r.a)
    r.uwide = u64(r.a)
    r.narrow = u8(r.a)
    r.shl_by_count = r.a << r.count
    return XDP_PASS
'''


TYPES = {"u8": (8, False), "i8": (8, True), "u32": (32, False), "i32": (32, True),
         "u64": (64, False), "i64": (64, True)}


def edge_values(bits: int, signed: bool) -> list[int]:
    if signed:
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return [0, 1, -1, 2, -7, 7, lo, hi, lo + 1, bits, bits - 1, bits + 1]
    hi = (1 << bits) - 1
    return [0, 1, 2, 7, hi, hi - 1, 1 << (bits - 1), bits, bits - 1, bits + 1]


@pytest.mark.kernel
@pytest.mark.parametrize("t", list(TYPES))
def test_operators_agree_at_the_edges(kernel: None, t: str) -> None:
    bits, signed = TYPES[t]
    program = check_source(program_for(t), f"semantics_{t}.py")
    obj = compile_program(program, observe=True)
    interp = Interpreter(program)
    values = edge_values(bits, signed)
    counts = [0, 1, bits - 1, bits, bits + 1, 200, 255]
    cases = 0
    with KernelHarness(obj) as runner:
        for a, b in itertools.product(values, values):
            store = MapStore(program, runner.ncpu)
            store.set("rows", 0, {"a": a, "b": b, "count": counts[cases % len(counts)]})
            inp = frame_input(bytes(64), maps=store)
            k = runner.run("compute", inp)
            i = interp.run("compute", inp)
            diffs = compare(k, i)
            assert not diffs, f"{t} a={a} b={b}: " + "; ".join(map(str, diffs))
            cases += 1
    assert cases == len(values) ** 2


def run_interp(t: str, a: int, b: int, count: int = 0) -> dict[str, int]:
    program = check_source(program_for(t), f"semantics_{t}.py")
    store = MapStore(program, 1)
    store.set("rows", 0, {"a": a, "b": b, "count": count})
    r = Interpreter(program).run("compute", frame_input(bytes(64), maps=store))
    return codec.decode(program.map("rows").value, r.maps["rows"].entries[bytes(4)])


def test_documented_corners() -> None:
    assert run_interp("i32", 7, 0)["div"] == 0
    assert run_interp("i32", 7, 0)["mod"] == 7
    assert run_interp("u8", 7, 0)["mod"] == 7
    assert run_interp("i32", -7, 2)["div"] == -4
    assert run_interp("i32", -7, 2)["mod"] == 1
    assert run_interp("i32", 7, -2)["mod"] == -1
    assert run_interp("i32", -2147483648, -1)["div"] == -2147483648
    assert run_interp("u32", 1, 32)["shl"] == 0
    assert run_interp("i32", -8, 40)["shr"] == -1
    assert run_interp("i32", 8, 40)["shr"] == 0
    assert run_interp("i32", 8, -1)["shr"] == 0           # a negative count is huge
    assert run_interp("u8", 250, 10)["add"] == 4
    r = run_interp("i8", -1, 0)
    assert r["wide"] == -1 and r["uwide"] == 2**64 - 1 and r["narrow"] == 255


LOOP_STOP = '''
from etran.dsl import *

class Budget(Struct):
    left: u32
    runs: u32

budgets = ArrayMap(Budget, max_entries=1)

@xdp
def spend(pkt: Packet) -> int:
    b = budgets.get(0)
    if b is None:
        return XDP_ABORTED
    for i in range(min(b.left, 8)):
        b.left -= 2          # the stop was read once: this does not cut the loop short
        b.runs += 1
    return XDP_PASS
'''


@pytest.mark.kernel
@pytest.mark.parametrize("left", [0, 1, 5, 8, 20])
def test_range_stop_is_evaluated_once_as_in_python(kernel: None, left: int) -> None:
    program = check_source(LOOP_STOP, "loop_stop.py")
    obj = compile_program(program, observe=True)
    value = program.map("budgets").value
    expected_runs = len(range(min(left, 8)))     # what Python does with the same source
    with KernelHarness(obj) as runner:
        store = MapStore(program, runner.ncpu)
        store.set("budgets", 0, {"left": left, "runs": 0})
        inp = frame_input(bytes(64), maps=store)
        k = runner.run("spend", inp)
        i = Interpreter(program).run("spend", inp)
        assert not compare(k, i)
    after = codec.decode(value, i.maps["budgets"].entries[bytes(4)])
    assert after["runs"] == expected_runs
    assert after["left"] == (left - 2 * expected_runs) % 2**32


HEADER_PARAMETER = '''
from etran.dsl import *


class Tags(Header):
    tag: Array[u8, 8]

    def get(self, i: u32) -> u8:
        return self.tag[i]

    def put(self, i: u32, v: u8) -> None:
        self.tag[i] = v


class Row(Struct):
    vals: Array[u8, 8]


class Probe(Struct):
    index: u32
    kept: Tags
    from_view: u8
    from_stack: u8
    from_map: u8
    through_alias: u8
    stack_after: u8
    from_row_view: u8
    from_row_stack: u8


probes = ArrayMap(Probe, max_entries=1)


def pick(t: Tags, i: u32) -> u8:
    return t.tag[i]


def pick_again(t: Tags, i: u32) -> u8:
    alias = t
    return pick(alias, i)


def pick_row(r: Row, i: u32) -> u8:
    return r.vals[i]


@xdp
def probe(pkt: Packet) -> int:
    p = probes.get(0)
    if p is None:
        return XDP_ABORTED
    view = pkt.header(Tags, 14)
    if view is None:
        return XDP_PASS
    local = Tags()
    for k in range(8):
        local.tag[k] = u8(0x40 + k)
    i = p.index
    p.from_view = pick(view, i)
    p.from_stack = pick(local, i)
    p.from_map = pick(p.kept, i)
    p.through_alias = pick_again(view, i)
    view.put(i, 0xEE)
    local.put(i, 0xEE)
    p.kept.put(i, 0xEE)
    p.stack_after = local.get(i)
    row = pkt.header(Row, 30)
    if row is None:
        return XDP_DROP
    p.from_row_view = pick_row(row, i)
    p.from_row_stack = pick_row(Row(), i)
    return XDP_TX
'''


@pytest.mark.kernel
@pytest.mark.parametrize("index", [0, 3, 7, 8, 9, 1000, 2**32 - 1])
def test_a_function_indexes_its_header_parameter_at_a_runtime_index(kernel: None,
                                                                      index: int) -> None:
    """The same function gets a packet view at one call, a value on the stack or in a map
    at others (directly, through an alias, as a method; a Header, and a Struct, which
    `pkt.header` takes too): each call checks its element where it lives, and an index out
    of range reads 0 and writes nothing."""
    program = check_source(HEADER_PARAMETER, "header_parameter.py")
    obj = compile_program(program, observe=True)
    frame = bytes(range(1, 65))
    kept = [0x80 + k for k in range(8)]
    with KernelHarness(obj) as runner:
        store = MapStore(program, runner.ncpu)
        store.set("probes", 0, {"index": index, "kept": {"tag": kept}})
        inp = frame_input(frame, maps=store)
        k = runner.run("probe", inp)
        i = Interpreter(program).run("probe", inp)
        diffs = compare(k, i)
        assert not diffs, f"index {index}: " + "; ".join(map(str, diffs))
    probe = codec.decode(program.map("probes").value, i.maps["probes"].entries[bytes(4)])
    inside = index < 8
    assert probe["from_view"] == (frame[14 + index] if inside else 0)
    assert probe["through_alias"] == probe["from_view"]
    assert probe["from_stack"] == (0x40 + index if inside else 0)
    assert probe["from_map"] == (kept[index] if inside else 0)
    assert probe["stack_after"] == (0xEE if inside else 0)
    assert probe["from_row_view"] == (frame[30 + index] if inside else 0)
    assert probe["from_row_stack"] == 0
    assert probe["kept"]["tag"] == [0xEE if k == index else v for k, v in enumerate(kept)]
    assert i.action == 3
    assert i.packet == bytes(0xEE if inside and k == 14 + index else b
                             for k, b in enumerate(frame))


@pytest.mark.kernel
def test_each_copy_of_a_function_loads_within_the_estimate(kernel: None) -> None:
    """The build users deploy (no observation probes) loads, with the copies of `pick` for a
    view, a stack value and a map value inlined, and the checker's estimate covers it."""
    from etran.runtime.loader import load_object
    program = check_source(HEADER_PARAMETER, "header_parameter.py")
    copies = [f for f in program.functions if f.name == "pick"]
    assert sorted(len(f.params) for f in copies) == [2, 2, 3]   # the view's copy takes the packet
    with load_object(compile_program(program).elf) as loaded:
        processed = loaded.programs["probe"].stats.processed_insns
    assert 0 < processed <= program.budgets["probe"].processed

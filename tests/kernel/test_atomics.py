"""`atomic_add`, `atomic_xchg` and `atomic_cas` in the kernel and in the interpreter.

Each case sets a map value, runs the hook once in both, and asserts they agree (the map
afterwards, the action, the ring of old values) and that the values are the documented
ones: every call gives the field's old value; `atomic_xchg` stores its value; `atomic_cas`
stores its value only when the field held the expected one. 32- and 64-bit, signed and
unsigned fields, at the edges of their ranges. Then two CPUs at once: an `atomic_cas`
try-lock admits one at a time, and `atomic_add` loses no update."""
from __future__ import annotations

from typing import Any

import pytest

from etran.differential.harness import KernelHarness, run_both
from etran.interp.state import MapStore, frame_input
from etran.ir import codec
from etran.pipeline import check_source, compile_program

SOURCE = """from etran.dsl import *


class Cell(Struct):
    value: FIELD
    expected: FIELD
    new: FIELD
    old: FIELD
    held: u32


cells = ArrayMap(Cell, max_entries=1)


@xdp
def swap(pkt: Packet) -> int:
    c = cells.get(0)
    if c is None:
        return XDP_ABORTED
    c.old = CALL
    c.held = 1 if c.value == c.new else 0
    return XDP_TX if c.old == c.expected else XDP_PASS
"""

CALLS = {"xchg": "atomic_xchg(c.value, c.new)",
         "cas": "atomic_cas(c.value, c.expected, c.new)",
         "add": "atomic_add(c.value, c.new)"}
EDGES = {"u32": [0, 1, 2**31, 2**32 - 1], "i32": [0, -1, -2**31, 2**31 - 1],
         "u64": [0, 1, 2**63, 2**64 - 1], "i64": [0, -1, -2**63, 2**63 - 1]}


def expected_after(op: str, t: str, value: int, expected: int, new: int) -> int:
    bits = int(t[1:])
    if op == "add":
        total = (value + new) % 2**bits
        return total - 2**bits if t[0] == "i" and total >= 2**(bits - 1) else total
    if op == "xchg" or value == expected:
        return new
    return value


@pytest.mark.kernel
@pytest.mark.parametrize("t", list(EDGES))
@pytest.mark.parametrize("op", list(CALLS))
def test_atomics_agree_and_give_the_old_value(kernel: None, op: str, t: str) -> None:
    program = check_source(SOURCE.replace("FIELD", t).replace("CALL", CALLS[op]), f"atomic_{op}.py")
    obj = compile_program(program, observe=True)
    edges = EDGES[t]
    swapped = kept = 0
    with KernelHarness(obj) as runner:
        for value in edges:
            for expected in (value, edges[(edges.index(value) + 1) % len(edges)]):
                for new in edges:
                    store = MapStore(program, runner.ncpu)
                    store.set("cells", 0, {"value": value, "expected": expected, "new": new})
                    k, _, diffs = run_both(runner, "swap", frame_input(bytes(64), maps=store))
                    assert not diffs, f"{op} {t} {value} {expected} {new}: {diffs}"
                    cell = codec.decode(program.map("cells").value,
                                        k.maps["cells"].entries[bytes(4)])
                    assert cell["old"] == value
                    assert cell["value"] == expected_after(op, t, value, expected, new)
                    if op == "cas":
                        swapped += value == expected
                        kept += value != expected and new != value
    if op == "cas":
        assert swapped and kept          # both outcomes were seen


def test_atomics_are_checked_like_atomic_add() -> None:
    from etran.dsl.diagnostics import DiagnosticError
    bad = SOURCE.replace("FIELD", "u16").replace("CALL", CALLS["cas"])
    with pytest.raises(DiagnosticError, match="atomics work on u32, u64, i32 or i64"):
        check_source(bad, "bad.py")
    wrong_args = SOURCE.replace("FIELD", "u32").replace("CALL", "atomic_cas(c.value, c.new)")
    with pytest.raises(DiagnosticError, match="atomic_cas"):
        check_source(wrong_args, "bad.py")
    not_a_field = SOURCE.replace("FIELD", "u32").replace("CALL", "atomic_xchg(c.value + 1, 2)")
    with pytest.raises(DiagnosticError, match="`atomic_xchg` needs a field or array element"):
        check_source(not_a_field, "bad.py")


CONTENDED = """from etran.dsl import *


class Shared(Struct):
    lock: u32
    inside: u32
    overlaps: u64
    entered: u64
    skipped: u64
    runs: u64


shared = ArrayMap(Shared, max_entries=1)


@xdp
def contend(pkt: Packet) -> int:
    s = shared.get(0)
    if s is None:
        return XDP_ABORTED
    atomic_add(s.runs, 1)
    if atomic_cas(s.lock, 0, 1) != 0:
        atomic_add(s.skipped, 1)
        return XDP_PASS
    if atomic_add(s.inside, 1) != 0:
        atomic_add(s.overlaps, 1)      # another CPU inside at the same time
    atomic_add(s.entered, 1)
    atomic_add(s.inside, u32(0xFFFFFFFF))   # inside -= 1
    atomic_xchg(s.lock, 0)
    return XDP_PASS
"""


@pytest.mark.kernel
def test_a_cas_try_lock_excludes_the_other_cpu(kernel: None) -> None:
    """Two threads on two CPUs run the hook 2,000,000 times each at once (BPF_PROG_TEST_RUN
    with repeat, which runs without the GIL): every `atomic_add` is counted exactly, and no
    run entered while the other CPU held the `atomic_cas` lock. The runs must have met
    (some found the lock taken), or the test proves nothing: up to three tries. The same
    hook with a plain `if s.lock != 0` test and `s.lock = 1` shows thousands of overlaps."""
    import os

    from etran.runtime.loader import load_object
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs to contend")
    obj = compile_program(check_source(CONTENDED, "contend.py"))
    repeat = 2_000_000
    for _ in range(3):
        with load_object(obj.elf) as loaded:
            _on_two_cpus(loaded.programs["contend"], cpus[:2], repeat)
            value = loaded.maps["shared"].lookup(bytes(4))
        assert value is not None
        s = codec.decode(obj.program.map("shared").value, value)
        assert s["runs"] == 2 * repeat
        assert s["entered"] + s["skipped"] == 2 * repeat
        assert s["overlaps"] == 0 and s["inside"] == 0 and s["lock"] == 0
        if s["skipped"] > 0:
            return
    pytest.fail(f"the two CPUs' runs never met in three tries: {s}")


def _on_two_cpus(prog: Any, cpus: list[int], repeat: int) -> None:
    """`repeat` test runs of `prog` from each of two threads, pinned to `cpus`, started
    together."""
    import os
    import threading
    errors: list[BaseException] = []
    start = threading.Barrier(len(cpus))

    def run(cpu: int) -> None:
        try:
            os.sched_setaffinity(0, {cpu})
            start.wait()
            prog.test_run(bytes(64), repeat=repeat)
        except BaseException as e:     # reported by the main thread
            errors.append(e)
    threads = [threading.Thread(target=run, args=(cpu,)) for cpu in cpus]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors

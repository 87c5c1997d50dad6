"""The clang comparison without clang: bench/vs_clang.py's twins and everything but its C side.

The benchmark compiles bench/c/NAME.c with clang at run time; the test suite must not need
clang. What would rot unnoticed until the next measurement is tested here: each twin
bench/c/NAME.py passes `etran check` and the kernel's verifier, has its C file and a
measurement case (and each case its pair); each case's map entries fit the twin's
declarations and, from them, the case's frame takes the twin down the path the benchmark
says it measures; and the agreement check, the timing with the kernel's run-time statistics
and the table work, with a twin in the C program's place.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import struct
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from etran.abi import XDP_DROP
from etran.runtime import libbpf as lb
from etran.testing.packets import checksum

ROOT = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vs_clang", ROOT / "bench" / "vs_clang.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # dataclasses resolve the module's annotations through it
    spec.loader.exec_module(module)
    return module


bench = _bench()
CASES = {case.name: case for case in bench.CASES}
OFFSET_VERIFIED_INSNS = 216   # struct bpf_prog_info, just after the run-time statistics


def test_every_twin_has_its_c_file_and_a_case() -> None:
    twins = {p.stem for p in bench.C_DIR.glob("*.py")}
    sources = {p.stem for p in bench.C_DIR.glob("*.c")}
    assert twins == sources == set(CASES)
    assert len(CASES) >= 8


def test_system_includes_come_from_clangs_search_list() -> None:
    verbose = ('clang -cc1 ...\n#include "..." search starts here:\n'
               "#include <...> search starts here:\n /usr/lib/clang/include\n"
               " /usr/include/x86_64-linux-gnu\n /usr/include\nEnd of search list.\n"
               " /not/a/directory\n")
    assert bench.system_includes(verbose) == [
        "-idirafter", "/usr/lib/clang/include", "-idirafter", "/usr/include/x86_64-linux-gnu",
        "-idirafter", "/usr/include"]


def _twin(name: str) -> tuple[Any, Any]:
    """The twin's checked program and the twin loaded (bench.Loaded)."""
    program, elf = bench.build_twin(name)
    assert len(program.hooks) == 1, "a twin has one hook, as its C file has one program"
    return program, bench.load("etran", elf, program.hooks[0].name, name)


@pytest.mark.kernel
@pytest.mark.parametrize("name", sorted(CASES))
def test_twin_takes_the_measured_path(kernel: None, name: str) -> None:
    case = CASES[name]
    program, side = _twin(name)
    try:
        bench.reset(side, bench.encode_maps(program, case))
        before = bench.snapshot(program, side)
        result = side.prog.test_run(case.frame)
        assert result.retval == case.action
        if program.maps:   # every case but the reflector writes state on its main path
            assert bench.snapshot(program, side) != before
        if name == "checksum":
            frame, out = case.frame, result.data
            assert out[:6] == frame[6:12] and out[6:12] == frame[:6]
            assert out[26:30] == frame[30:34] and out[30:34] == frame[26:30]
            assert checksum(out[14:34]) == 0
    finally:
        side.obj.close()


@pytest.mark.kernel
def test_agreement_timing_and_table_with_a_twin_for_the_c(kernel: None) -> None:
    case = CASES["dctcp"]
    program, twin = _twin("dctcp")
    _, other = _twin("dctcp")
    other.label = "clang"
    empty = bench.load_empty()
    try:
        bench.check_layouts(program, twin, other)
        assert bench.disagreements(program, case, [twin, other]) == []
        wrong = dataclasses.replace(case, action=XDP_DROP)
        assert len(bench.disagreements(program, wrong, [twin, other])) == 2

        info = lb.obj_get_info(twin.prog.fd)
        assert struct.unpack_from("<I", info, OFFSET_VERIFIED_INSNS)[0] == \
            twin.prog.stats.processed_insns, "bench/vs_clang.py reads bpf_prog_info at the "\
            "wrong offsets"
        entries = bench.encode_maps(program, case)
        with bench.one_cpu(), bench.run_time_stats():
            times = bench.time_sides([(twin, entries), (other, entries), (empty, {})],
                                     case.frame, rounds=3, repeat=1000)
        assert set(times) == {"etran", "clang", "empty"}
        assert all(t["ns"] > 0 and t["test_run_ns"] > 0 for t in times.values())

        r = {"etran": {**twin.numbers(), **times["etran"]},
             "clang": {**other.numbers(), **times["clang"]}}
        r["ratio"] = {m: bench.ratio(r["etran"][m], r["clang"][m]) for m in bench.MEASURED}
        r["ratio"]["net_ns"] = None
        text = bench.table({"dctcp": r}, {m: r["ratio"][m] for m in bench.RATIOS})
        insns = r["etran"]["insns"]
        assert text.splitlines()[2].startswith(f"| dctcp | {insns} | {insns} | 1.00 |")
        assert text.splitlines()[-1].startswith("| median ratio | | | 1.00 |")
    finally:
        for side in (twin, other, empty):
            side.obj.close()

"""An observed build without probes is the plain build: what lets a campaign compile once.

`etran fuzz --programs` and `tests/property/campaign.py` need two things of each program:
the verifier's verdict and count on the plain build (soundness, budget) and test runs on
the observed build (equivalence). When the observed build holds no probe
(`CompiledObject.probes == 0`: no clock, random value, redirect or timer start, no
`__fire` program), they compile only the observed build and take the counts from its
load. That is right only if such a build's programs are the plain build's, instruction
for instruction, and the kernel processes them alike: checked here on generated programs,
and the converse (a probe changes the code) so the check cannot pass vacuously.
"""
from __future__ import annotations

from etran.backend.emit import CompiledObject
from etran.backend.objfile import read_object
from etran.dsl.diagnostics import DiagnosticError
from etran.pipeline import check_source, compile_program
from etran.runtime.loader import load_object
from etran.testing.progen import sample_programs


def _code(elf: bytes) -> dict[str, list[tuple[str, list[bytes], dict[int, str]]]]:
    """Each program's instructions and call targets, its own and its subprograms'."""
    obj = read_object(elf)
    return {p.name: [(f.name, f.instructions, f.calls) for f in (p, *p.subprograms)]
            for p in obj.programs}


def _builds(n: int, seed: int) -> list[tuple[CompiledObject, CompiledObject]]:
    out = []
    for gen in sample_programs(n, seed=seed):
        try:
            program = check_source(gen.source, "generated.py")
        except DiagnosticError:
            continue
        out.append((compile_program(program), compile_program(program, observe=True)))
    return out


def test_a_build_without_probes_has_the_plain_programs() -> None:
    builds = _builds(60, seed=31)
    without = [(p, o) for p, o in builds if o.probes == 0]
    with_probes = [(p, o) for p, o in builds if o.probes > 0]
    assert len(without) >= 10 and len(with_probes) >= 10
    for plain, observed in without:
        assert plain.probes == 0
        assert _code(observed.elf) == _code(plain.elf)
    # a probe shows in the code, so the comparison above can tell two builds apart (a
    # probe is counted where it is lowered; LLVM may yet drop one in unreachable code)
    differ = sum(_code(o.elf) != _code(p.elf) for p, o in with_probes)
    assert differ >= 0.9 * len(with_probes)


def test_the_kernel_counts_a_build_without_probes_as_the_plain_one(kernel: None) -> None:
    checked = 0
    for plain, observed in _builds(30, seed=32):
        if observed.probes:
            continue
        with load_object(plain.elf) as a, load_object(observed.elf) as b:
            assert {n: p.stats.processed_insns for n, p in a.programs.items()} == \
                   {n: p.stats.processed_insns for n, p in b.programs.items()}
        checked += 1
    assert checked >= 5

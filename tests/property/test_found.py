"""Programs that generated-program campaigns found breaking the compiler, kept as regressions.

Each file in `found/` once crashed the checker or the lowering, was accepted by
the checker and refused by the kernel, made the kernel and the interpreter
disagree, or had its verifier work under-estimated. Each must now either be
refused by the checker with a diagnostic, or load, stay within its estimate
and agree with the interpreter on generated inputs. A `budget_false_refusal_*` or
`stack_false_refusal_*` program (the checker refused what the kernel accepts) must be
accepted.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from etran.analysis.budget import check_refined
from etran.differential.harness import KernelHarness
from etran.differential.inputs import describe, fuzz_hook
from etran.dsl.diagnostics import DiagnosticError, DiagnosticSink
from etran.pipeline import check_source, compile_program, refine_budgets
from etran.runtime.loader import load_object

FOUND = sorted((Path(__file__).parent / "found").glob("*.py"))
FALSE_REFUSAL = ("budget_false_refusal", "stack_false_refusal")
pytestmark = [pytest.mark.kernel, pytest.mark.property]


@pytest.mark.parametrize("path", FOUND, ids=lambda p: p.stem)
def test_found_program_is_now_handled(kernel: None, path: Path) -> None:
    try:
        program = check_source(path.read_text(), path.name)
    except DiagnosticError as err:
        # A program kept for a false refusal must now be accepted: precision regressions
        # fail too.
        assert not path.stem.startswith(FALSE_REFUSAL), str(err)
        assert err.diagnostics and all(d.span is not None for d in err.diagnostics)
        return
    plain = compile_program(program)
    with load_object(plain.elf) as loaded:
        for name, prog in loaded.programs.items():
            assert prog.stats.processed_insns <= program.budgets[name].processed
    if path.stem.startswith(FALSE_REFUSAL):
        # nor refused once compiled: `etran check` decides by the replay's estimate too
        refine_budgets(plain)
        sink = DiagnosticSink()
        check_refined(program, sink)
        assert not sink.has_errors, "\n".join(map(str, sink.items))
    obj = compile_program(program, observe=True)
    with KernelHarness(obj) as runner:
        for hook in program.hooks:
            report = fuzz_hook(runner, hook.name, 200, seed=0)
            assert report.counterexample is None, describe(report.counterexample, obj)

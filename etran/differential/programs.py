"""`etran fuzz --programs N`: generated programs through the whole pipeline and the kernel.

For every program the generator (`etran.testing.progen`) draws:
* the checker accepts or rejects it; a program rejected only by a
  whole-program rule (budget, stack) is compiled past the checker on purpose
  and loaded: if the kernel accepts it, the checker was imprecise;
* soundness: an accepted program must load in the kernel verifier;
* budget: the verifier's processed count must not exceed the estimate, as reported once
  compiled (`refine_estimates`: the replay's where lower than the checker's);
* equivalence: on generated inputs, the kernel and the interpreter agree.
Soundness failures and mismatches stop the campaign and are shrunk by
hypothesis to a small program and input; budget misses are counted.

With `sweep=True` (`etran fuzz --programs N --sweep`) the programs come from a seeded
`random.Random` (`etran.testing.progen.sample_program`, as the long campaigns draw them)
and their inputs from seeded random bytes: no hypothesis engine, whose draws cost four
times the generator's own (18 against 4.4 ms a program), and no shrinking: a failure is
reported as drawn.
"""
from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hyp_seed

from etran.differential.harness import KernelHarness, compare
from etran.differential.inputs import Counterexample
from etran.dsl.diagnostics import DiagnosticError
from etran.interp.interpreter import Interpreter
from etran.ir import tir
from etran.pipeline import check_source, compile_for_testing, compile_program
from etran.runtime.errors import VerifierError
from etran.runtime.loader import LoadedObject, load_object
from etran.testing.progen import GeneratedProgram, programs, sample_program
from etran.testing.strategies import input_blobs, inputs_from_bytes

FILENAME = "generated.py"


class _Found(Exception):
    pass


@dataclass
class Campaign:
    programs: int = 0
    accepted: int = 0
    rejected_rules: dict[str, int] = field(default_factory=dict)
    imprecise: int = 0              # rejected by the checker, accepted by the kernel
    rejected_checked: int = 0       # rule rejections tried in the kernel
    budget_misses: list[tuple[str, int, int]] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)   # checker estimate / kernel count
    cases: int = 0
    seconds: float = 0.0
    soundness_failure: tuple[str, str] | None = None     # (source, verifier summary)
    counterexample: Counterexample | None = None

    @property
    def precision_loss(self) -> float:
        """Share of generated programs the checker rejects but the kernel accepts."""
        return self.imprecise / self.programs if self.programs else 0.0


def run_campaign(n: int, inputs_per_program: int = 3, seed: int | None = None,
                 max_statements: int = 40,
                 progress: Callable[[Campaign], None] | None = None,
                 sweep: bool = False) -> Campaign:
    camp = Campaign()
    start = time.perf_counter()

    def one(gen: GeneratedProgram, blobs: tuple[list[bytes], bytes]) -> None:
        camp.programs += 1
        if progress is not None and camp.programs % 25 == 0:
            camp.seconds = time.perf_counter() - start
            progress(camp)
        _one_program(camp, gen, blobs)

    try:
        if sweep:
            rng = random.Random(f"programs:{seed or 0}")
            for i in range(n):
                blobs = ([rng.randbytes(rng.randint(48, 300)) for _ in range(inputs_per_program)],
                         rng.randbytes(rng.randint(160, 600)))
                one(sample_program(i, max_statements, seed=seed or 0), blobs)
        else:
            drawn = settings(max_examples=n, deadline=None, database=None,
                             derandomize=seed is None, suppress_health_check=list(HealthCheck),
                             report_multiple_bugs=False, phases=[Phase.generate, Phase.shrink])(
                given(programs(max_statements), input_blobs(inputs_per_program))(one))
            if seed is not None:
                drawn = hyp_seed(seed)(drawn)
            drawn()
    except _Found:
        pass
    camp.seconds = time.perf_counter() - start
    return camp


def _one_program(camp: Campaign, gen: GeneratedProgram, blobs: tuple[list[bytes], bytes]) -> None:
    """One generated program through the checker, the compiler and the kernel, and its
    inputs through both sides; raises _Found on a soundness failure or a mismatch."""
    try:
        program = check_source(gen.source, FILENAME)
    except DiagnosticError as err:
        for d in err.diagnostics:
            camp.rejected_rules[d.rule] = camp.rejected_rules.get(d.rule, 0) + 1
        _try_past_checker(gen, err, camp)
        return
    camp.accepted += 1
    # without probes there is no plain build: the observed build's one load gives the
    # verifier's verdict and counts and then runs the inputs
    observed, plain = compile_for_testing(program)
    try:
        if plain is not None:
            with load_object(plain.elf, name="gen") as loaded:
                _record_counts(camp, gen.source, program, loaded)
        runner = KernelHarness(observed)
    except VerifierError as e:
        camp.soundness_failure = (gen.source, e.summary())
        raise _Found() from None
    interp = Interpreter(program)
    with runner:
        if plain is None:
            _record_counts(camp, gen.source, program, runner.loaded)
        inputs = inputs_from_bytes(program, runner.ncpu, blobs[0], blobs[1])
        for hook in gen.hooks:
            for inp in inputs:
                camp.cases += 1
                k, i = runner.run(hook, inp), interp.run(hook, inp)
                diffs = compare(k, i)
                if diffs:
                    camp.counterexample = Counterexample(program, hook, inp, None, k, i, diffs)
                    raise _Found()


def _record_counts(camp: Campaign, source: str, program: tir.Program,
                   loaded: LoadedObject) -> None:
    """The budget property: each hook's count within the checker's estimate."""
    for name, prog in loaded.programs.items():
        real, est = prog.stats.processed_insns, program.budgets[name].processed
        if real:
            camp.ratios.append(est / real)
        if real > est:
            camp.budget_misses.append((source, est, real))


def _try_past_checker(gen: GeneratedProgram, err: DiagnosticError, camp: Campaign) -> None:
    """A program rejected only by whole-program rules: does the kernel accept it anyway?"""
    whole_program = {"budget", "stack", "call-depth"}
    if not all(d.rule in whole_program for d in err.diagnostics):
        return
    try:
        program = check_source(gen.source, FILENAME, enforce_rules=False)
        obj = compile_program(program)
    except DiagnosticError:
        return
    camp.rejected_checked += 1
    try:
        with load_object(obj.elf, name="gen"):
            camp.imprecise += 1
    except VerifierError:
        pass


def _print_progress(c: Campaign) -> None:
    rate = c.programs / c.seconds if c.seconds else 0.0
    print(f"  {c.programs} programs, {c.accepted} accepted, {c.cases} cases, "
          f"{rate:.1f} programs/s", file=sys.stderr, flush=True)


def summary(c: Campaign) -> str:
    lines = [f"{c.programs} programs generated in {c.seconds:.0f} s "
             f"({c.programs / c.seconds if c.seconds else 0:.1f}/s): {c.accepted} accepted by the "
             f"checker, {c.programs - c.accepted} rejected"]
    if c.rejected_rules:
        lines.append("  rejected by rule: " + ", ".join(f"{r} {n}" for r, n in
                                                       sorted(c.rejected_rules.items())))
    lines.append(f"  soundness failures (accepted, refused by the kernel): "
                 f"{1 if c.soundness_failure else 0}")
    lines.append(f"  budget misses (kernel count above the estimate): {len(c.budget_misses)}")
    if c.ratios:
        r = sorted(c.ratios)
        lines.append(f"  estimate / kernel count: min {r[0]:.2f}, median {r[len(r) // 2]:.2f}, "
                     f"max {r[-1]:.1f}")
    lines.append(f"  precision: {c.imprecise} of {c.programs} programs "
                 f"({100 * c.precision_loss:.2f}%) rejected by the checker but accepted by the "
                 f"kernel ({c.rejected_checked} rule rejections tried)")
    lines.append(f"  differential cases: {c.cases}, mismatches: {1 if c.counterexample else 0}")
    return "\n".join(lines)


def fuzz_programs_command(args: Any) -> int:
    from etran.differential.inputs import describe, save_counterexample
    from etran.runtime.loader import check_kernel_support
    if args.programs < 1:
        print("etran: --programs must be at least 1", file=sys.stderr)
        return 2
    check_kernel_support()
    camp = run_campaign(args.programs, args.inputs, args.seed, progress=_print_progress,
                        sweep=args.sweep)
    print(summary(camp))
    failed = False
    if camp.soundness_failure is not None:
        failed = True
        source, why = camp.soundness_failure
        print("SOUNDNESS FAILURE: the checker accepted this program, the kernel refused it:")
        print(source)
        print(why)
        d = Path(args.save)
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"soundness-{abs(hash(source)) % 10**10}.py"
        path.write_text(source)
        print(f"saved to {path}")
    if camp.counterexample is not None:
        failed = True
        print(describe(camp.counterexample))
        print(f"saved to {save_counterexample(camp.counterexample, Path(args.save))}")
    for source, est, real in camp.budget_misses[:3]:
        print(f"BUDGET MISS: estimate {est}, kernel {real}:\n{source}")
    return 1 if failed or camp.budget_misses else 0

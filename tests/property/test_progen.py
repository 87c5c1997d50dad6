"""Generated programs: the checker accepts them, the verifier agrees, the kernel matches the interpreter.

Issue 4's properties, over random well-typed transports from
`etran.testing.progen` instead of hand-written ones:

* (a) every generated program is valid Python and parses as the language, and
  the checker accepts at least 97% of them (200 independent programs from the
  seeded sampler; refusals are tallied by rule: budget/stack ones are expected
  at a low rate, anything else is a generator or checker bug); and over 300 of
  them, every operator, builtin and map method of the language is compiled on
  values read at run time, and edge constants appear (`progen.CORNERS`: what a
  fuzzer must reach to catch a miscompiled corner, issue 11);
* (b) soundness: a program the checker accepts loads in the kernel verifier,
  and the verifier's processed-instruction count is within the checker's
  estimate, and within the tighter one reported once compiled
  (`etran.analysis.budget.refine_estimates`);
* (c) the compiled program and the reference interpreter agree on generated
  inputs (`etran.testing.strategies.inputs_from_bytes`, as `etran fuzz --programs`
  draws them): valid and malformed frames, map contents keyed by the frames'
  addresses and ports, clock, CPU.

(b) and (c) draw from the hypothesis strategy, derandomized, so CI sees the
same programs every run and a failure shrinks to a short program. The shrunk
counterexample is written to tests/property/new/ (ignored by git and by every
test, so a failed run leaves nothing that changes the next one): a (b) failure
as a program, to be moved to tests/property/found/ (test_found.py), a (c)
failure as source and input, to be moved to tests/property/regressions/
(test_examples_fuzz.py replays those); commit it with the fix. The file takes 3 to 4 minutes on two cores.
Generated programs probe every operator on edge values (issue 11): an example costs
about a quarter more than it did and catches far more, so (b) and (c) run 600 and
1,400 examples where they ran 1,000 and 2,000.
"""
from __future__ import annotations

import ast as pyast
import functools
import hashlib
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etran.differential.harness import KernelHarness, compare
from etran.differential.inputs import Counterexample, save_counterexample
from etran.differential.programs import run_campaign
from etran.dsl.diagnostics import DiagnosticError
from etran.dsl.parser import parse
from etran.interp.interpreter import Interpreter
from etran.ir import tir
from etran.pipeline import check_source, compile_program, refine_budgets
from etran.runtime.errors import VerifierError
from etran.runtime.loader import load_object
from etran.testing.progen import CORNERS, FEATURES, GeneratedProgram, coverage, programs, sample_programs
from etran.testing.strategies import input_blobs, inputs_from_bytes, usable_cpus

LIMIT_RULES = {"budget", "stack"}      # rejections that are not the generator's fault
KERNEL = settings(deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


NEW = Path(__file__).parent / "new"   # counterexamples of this run; see the docstring
_kept: dict[str, Path] = {}


def keep(test: str, path: Path, text: str) -> None:
    """Save a failing example, replacing the one this test saved before: hypothesis runs
    the shrunk example last, so the file left behind is the shrunk counterexample."""
    old = _kept.get(test)
    if old is not None and old != path:
        old.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    _kept[test] = path


def keep_program(source: str, why: str) -> Path:
    """A (b) counterexample as a program in found/, its docstring saying what went wrong."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:10]
    path = NEW / f"generated_{digest}.py"
    quote = chr(34) * 3
    body = source.split(quote, 2)[-1].lstrip("\n")      # drop the generator's docstring
    doc = why.replace(quote, "'''").replace("\\", "/")
    keep("b", path, f"{quote}{doc}\n{quote}\n{body}")
    return path


def checked(p: GeneratedProgram) -> tir.Program | None:
    """The typed program, or None when only the budget/stack limits refuse it."""
    try:
        return check_source(p.source, "generated.py")
    except DiagnosticError as e:
        rules = {d.rule for d in e.diagnostics}
        if rules <= LIMIT_RULES:
            return None
        raise AssertionError("the checker rejects a well-typed generated program:\n"
                             + "\n".join(map(str, e.diagnostics)) + "\n" + p.source) from None


# ---------------------------------------------------------------- (a) the checker
@functools.cache
def checked_sample(n: int = 300) -> list[tuple[GeneratedProgram, tir.Program | None, str, str]]:
    """`sample_programs(n)`, checked once for the tests below: (program, typed program or
    None, rules refusing it or a crash, detail). Its first 200 are `sample_programs(200)`."""
    out = []
    for p in sample_programs(n):
        try:
            out.append((p, check_source(p.source, "generated.py"), "", ""))
        except DiagnosticError as e:
            out.append((p, None, ",".join(sorted({d.rule for d in e.diagnostics})),
                        "\n".join(map(str, e.diagnostics[:3]))))
        except Exception as e:  # a checker crash is a rejection too, and a bug
            out.append((p, None, f"crash {type(e).__name__}", repr(e)))
    return out


def test_generated_programs_parse_and_check() -> None:
    sample = checked_sample()[:200]
    progs = [p for p, _, _, _ in sample]
    assert len(progs) == 200
    tally: Counter[str] = Counter()
    first: dict[str, str] = {}
    for p, program, why, detail in sample:
        pyast.parse(p.source)                      # valid Python, so editors and linters work
        parse(p.source, "generated.py")            # and in the language's grammar
        if program is not None:
            continue
        tally[why] += 1
        first.setdefault(why, f"{detail}\n{p.source}")
    accepted = len(progs) - sum(tally.values())
    assert accepted >= 0.97 * len(progs), (
        f"the checker accepts {accepted}/{len(progs)} generated programs; rejections by rule: "
        f"{dict(tally)}\n\n" + "\n\n".join(f"--- first `{k}`:\n{v}" for k, v in first.items()))
    not_limits = {k: n for k, n in tally.items() if not set(k.split(",")) <= LIMIT_RULES}
    assert sum(not_limits.values()) <= 2, f"rejections other than budget/stack: {not_limits}"
    used = set().union(*(p.features for p in progs))
    assert used == FEATURES, f"features never generated: {sorted(FEATURES - used)}"


def test_generated_programs_reach_every_corner_at_run_time() -> None:
    """Each operator (of signed and unsigned types, divisors and shift counts read at run
    time too), comparison, conversion, min/max, atomic and Timer result, map method,
    packet operation, checksum helper and builtin is compiled in some accepted program on
    values read from the packet or the maps, where no compiler can fold it; and the edge
    constants (0, 1, all-ones, the signed extremes and -1 of every type, shifts by the
    width and past it, divisors 0 and -1, sequence numbers near 2**32) appear."""
    counts: Counter[str] = Counter()
    accepted = [program for _, program, _, _ in checked_sample() if program is not None]
    for program in accepted:
        counts.update(coverage(program))
    missing = sorted(CORNERS - set(counts))
    assert not missing, f"never reached in {len(accepted)} accepted programs: {missing}"
    # Probes make each operator common, not a lucky draw: most programs compile most
    # operators on runtime values.
    ops = [c for c in CORNERS if c.split()[0] in ("+", "-", "*", "//", "%", "&", "|", "^")]
    rare = {c: counts[c] for c in ops if counts[c] < len(accepted) // 10}
    assert not rare, f"operators in under a tenth of {len(accepted)} programs: {rare}"


# ---------------------------------------------------------------- (b) soundness and budget
@pytest.mark.property
@settings(KERNEL, max_examples=600)
@given(programs(max_statements=40))
def test_accepted_programs_pass_the_verifier_within_the_estimate(kernel: None,
                                                                  p: GeneratedProgram) -> None:
    program = checked(p)
    if program is None:
        return
    obj = compile_program(program)
    # once compiled, estimates are the replay's where lower (refine_estimates): the kernel's
    # count must stay within those and within the check's
    source = {n: e.processed for n, e in program.budgets.items()}
    refine_budgets(obj)
    try:
        loading = load_object(obj.elf)
    except VerifierError as e:                     # a soundness bug
        saved = keep_program(p.source, f"Verifier rejection of a checker-accepted program.\n\n{e}")
        raise AssertionError(f"the verifier refuses an accepted program (saved to {saved}):\n"
                             f"{e}\n{p.source}") from None
    with loading as loaded:
        for name, prog in loaded.programs.items():
            est = min(program.budgets[name].processed, source[name])
            if prog.stats.processed_insns > est:
                which = "the replay's" if est < source[name] else "the checker's"
                why = (f"`{name}`: the verifier processed {prog.stats.processed_insns} "
                       f"instructions, above {which} estimate {est} (the check's: "
                       f"{source[name]})")
                saved = keep_program(p.source, f"Budget under-estimate.\n\n{why}.")
                raise AssertionError(f"{why} (saved to {saved})\n{p.source}")


# ---------------------------------------------------------------- (c) kernel == interpreter
@pytest.mark.property
@settings(KERNEL, max_examples=1400)
@given(p=programs(max_statements=35), data=st.data())
def test_kernel_and_interpreter_agree(kernel: None, p: GeneratedProgram, data: st.DataObject) -> None:
    program = checked(p)
    if program is None:
        return
    interp = Interpreter(program)
    with KernelHarness(compile_program(program, observe=True)) as runner:
        frames, rest = data.draw(input_blobs(3), label="inputs")
        inputs = inputs_from_bytes(program, runner.ncpu, frames, rest, usable_cpus(runner.ncpu))
        store = inputs[0].maps
        for step, first in enumerate(inputs):
            inp = replace(first, maps=store)   # each run starts from the state the last one left
            hook = p.hooks[step % len(p.hooks)]
            k = runner.run(hook, inp)
            mine = interp.run(hook, inp)
            diffs = compare(k, mine)
            if diffs:
                cx = Counterexample(program, hook, inp, None, k, mine, diffs)
                saved = save_counterexample(cx, NEW)
                keep("c", saved, saved.read_text())
                raise AssertionError(f"step {step}, hook `{hook}`, packet {inp.packet.hex()} "
                                     f"(saved to {saved}):\n  "
                                     + "\n  ".join(map(str, diffs)) + "\n" + p.source)
            store = mine.maps


# ---------------------------------------------------------------- (d) the campaigns' programs
SWEEP_PROGRAMS = 120


@pytest.mark.property
def test_the_campaigns_programs_pass_all_three(kernel: None) -> None:
    """`etran fuzz --programs N --sweep` on the first SWEEP_PROGRAMS programs of a fixed
    seed: the programs the long campaigns run (larger than hypothesis's, independent; a
    seeded lowering defect shows at the third), through soundness, budget and equivalence
    (5 inputs each). A failure is saved to tests/property/new/ as drawn (not shrunk)."""
    camp = run_campaign(SWEEP_PROGRAMS, inputs_per_program=5, seed=20261208, sweep=True)
    if camp.soundness_failure is not None:
        source, why = camp.soundness_failure
        saved = keep_program(source, f"Verifier rejection of a checker-accepted program.\n\n{why}")
        raise AssertionError(f"the verifier refuses an accepted program (saved to {saved})")
    if camp.counterexample is not None:
        saved = save_counterexample(camp.counterexample, NEW)
        raise AssertionError(f"kernel and interpreter disagree (saved to {saved}):\n"
                             + "\n".join(map(str, camp.counterexample.differences)))
    for source, est, real in camp.budget_misses:
        saved = keep_program(source, f"Budget under-estimate: kernel {real}, estimate {est}.")
        raise AssertionError(f"the kernel processed {real}, above the estimate {est} "
                             f"(saved to {saved})")
    assert camp.programs == SWEEP_PROGRAMS and camp.accepted >= SWEEP_PROGRAMS * 0.97
    assert camp.cases >= camp.accepted * 5

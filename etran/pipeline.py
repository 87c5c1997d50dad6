"""The compiler's passes, in order, in one place.

    source --parse--> syntax tree --check--> typed program --rules--> --budget-->
    typed program --lower--> LLVM IR with debug info --emit (optimise, BPF back end)--> ELF

Why this order:
* parse, then check: the checker needs the whole module's declarations; DSL
  modules the main file imports are parsed by the checker as it meets them;
* check before rules: the rules walk the call graph and the statements the
  checker typed (which helpers each function calls, what it puts on the stack);
* rules before budget: on a cyclic call graph (recursion) the stack and the
  estimate are meaningless, so the budget runs only on an acyclic one;
* everything that refuses a program runs before lowering, so LLVM only ever
  sees programs the checker accepted (or, with `enforce_rules=False`, programs
  whose rule violations were recorded on purpose); the one check after it is the
  compiled frames' size, which only register allocation decides. One exception:
  a hook the budget's source-level estimate refuses, in a program the checker
  accepted otherwise, is compiled for a second opinion (the verifier replayed
  over the compiled instructions, `etran.analysis.replay`).
Each step raises `DiagnosticError` for problems in the user's program; only
bugs in the compiler surface as other exceptions. Nothing else runs a pass:
every caller goes through `check_source`/`compile_program` here.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from etran.abi import MAX_BPF_STACK
from etran.analysis.budget import check_budget
from etran.analysis.rules import check_rules
from etran.check.modules import check_program
from etran.collector import gc_paused
from etran.dsl.diagnostics import DiagnosticError, DiagnosticSink
from etran.dsl.parser import parse
from etran.ir import tir

if TYPE_CHECKING:
    from etran.backend.emit import CompiledObject

# The code generator (llvmlite, pyelftools) is imported by compile_program only: `etran
# check` never needs it, and it is most of a command's start-up time.


def check_source(text: str, filename: str = "<input>", search_dirs: list[Path] | None = None,
                 sink: DiagnosticSink | None = None,
                 timings: dict[str, float] | None = None,
                 enforce_rules: bool = True, budget_advisory: bool = False) -> tir.Program:
    """Parse, check, apply the whole-program rules and estimate the budget; raise
    DiagnosticError listing every problem found.

    `budget_advisory` turns the verifier-work estimate into a warning left in `sink`:
    the kernel verifier has the last word (`--kernel-decides` on the command line).
    A hook the source-level estimate refuses gets a second opinion: the program is
    compiled and the verifier replayed over its instructions (`check_budget`).
    `enforce_rules=False` records the whole-program rules' violations (and the budget's,
    from the source-level estimate alone: no second opinion) in `program.rule_violations`
    instead of raising (precision measurements)."""
    t = timings if timings is not None else {}
    sink = sink or DiagnosticSink()
    t0 = time.perf_counter()
    # The syntax tree and the typed program stay alive to the end: the collector's passes
    # over them free nothing (etran.collector).
    with gc_paused():
        tree = parse(text, filename)
        t["parse"] = time.perf_counter() - t0
        program = check_program(tree, text, filename, search_dirs, sink, t)
        rules_sink = sink if enforce_rules else DiagnosticSink()
        # The second opinions compile the program (once, for both): only one the checker
        # accepted so far, and only when an estimate is over a limit.
        second = _SecondOpinion(program) if enforce_rules and not sink.has_errors else None
        if check_rules(program, rules_sink, frame=second.frame if second else None):
            check_budget(program, rules_sink, advisory=budget_advisory,
                         compiled=second.elf if second else None)
            for name, depth in (second.frames_asked if second else {}).items():
                if name in program.budgets and depth is not None:
                    program.budgets[name] = replace(program.budgets[name], stack=depth)
    if not enforce_rules:
        program.rule_violations = list(rules_sink.items)
    t["check"] = time.perf_counter() - t0 - t["parse"]
    sink.raise_if_errors()
    return program


class _SecondOpinion:
    """The program compiled, at most once, for the checks' second opinions: the budget's
    (the verifier replayed over the compiled instructions) and the stack rule's (the
    compiled hook's frame), each asked only when the source-level estimate is over a
    limit."""

    def __init__(self, program: tir.Program) -> None:
        self.program = program
        self._compiled: CompiledObject | str | None = None
        self.frames_asked: dict[str, int | None] = {}

    def _build(self) -> CompiledObject | str:
        """The compiled program, or why there is none (the compiled frames' check refuses
        it)."""
        if self._compiled is None:
            try:
                self._compiled = compile_program(self.program)
            except DiagnosticError as e:
                self._compiled = "; ".join(d.message for d in e.diagnostics)
        return self._compiled

    def elf(self) -> bytes | str:
        """The ELF, or why there is none."""
        built = self._build()
        return built if isinstance(built, str) else built.elf

    def frame(self, hook: str) -> int | None:
        """The stack the compiled `hook` uses (measured when it was compiled), or None
        when it could not be compiled."""
        built = self._build()
        depth = None if isinstance(built, str) else \
            next((p.stack for p in built.programs if p.name == hook), None)
        self.frames_asked[hook] = depth
        return depth


def check_file(path: str | Path, timings: dict[str, float] | None = None) -> tir.Program:
    p = Path(path)
    return check_source(p.read_text(), str(p), timings=timings)


def compile_program(program: tir.Program, observe: bool = False,
                    timings: dict[str, float] | None = None, keep_ir: bool = False,
                    defects: frozenset[str] = frozenset(),
                    native_egress: bool = False) -> CompiledObject:
    """Lower and emit a checked program. `observe` adds the probes `etran run` reads;
    `defects` deliberately miscompiles (tests of the checks that must catch it);
    `native_egress` builds the @egress hooks for the native path (etran.lower.native)."""
    from etran.backend.emit import CompiledObject, ProgramInfo, emit_object
    from etran.lower.context import reach
    from etran.lower.irtext import module_text
    from etran.lower.module import lower
    t = timings if timings is not None else {}
    # What is tried, in order, while LLVM's frame is over the kernel's 512 bytes: the
    # packet's bounds kept in registers and short loops unrolled make it spill more, so a
    # program whose frame they push over is compiled again without them, one at a time.
    reached = reach(program)
    attempts = [(reached.keeps_bounds(), True), (False, True)]
    if reached.unrolled:
        attempts.append((reached.keeps_bounds(unroll=False), False))
    attempts = [a for i, a in enumerate(attempts) if a not in attempts[:i]]
    for keep_bounds, unroll in attempts:
        t0 = time.perf_counter()
        with gc_paused():   # the module dropped before the collector ever sees it (lower)
            module, probes = lower(program, observe=observe, defects=defects,
                                   keep_bounds=keep_bounds, unroll=unroll, reached=reached,
                                   native_egress=native_egress)
            text = module_text(module)   # str(module), faster (etran/lower/irtext.py)
            del module
        t1 = time.perf_counter()
        elf = emit_object(text)
        t2 = time.perf_counter()
        t["lower"] = t1 - t0
        t["llvm"] = t2 - t1
        try:
            measured = _check_frames(program, elf)
            break
        except DiagnosticError:
            if (keep_bounds, unroll) == attempts[-1]:
                raise
    programs = [ProgramInfo(h.name, h.hook or "", "xdp", *measured.get(h.name, (0, 0)))
                for h in program.hooks if h.hook != "timer"]
    return CompiledObject(elf, program, programs, list(program.maps), observe, dict(t),
                          text if keep_ir else "", probes)


def refine_budgets(obj: CompiledObject) -> None:
    """Tighten `obj.program`'s estimates with the replay over `obj`'s instructions
    (`etran.analysis.budget.refine_estimates`), for the commands that show them next to the
    kernel's count. Only a build whose programs are the plain build's (no observation
    probes): the estimates are of those. `etran build` does not call it (it shows none)."""
    if obj.observe and obj.probes:
        return
    from etran.analysis.budget import refine_estimates
    refine_estimates(obj.program, obj.elf)


def compile_for_testing(program: tir.Program) -> tuple[CompiledObject, CompiledObject | None]:
    """The observed build a differential run needs, and the plain build whose verifier counts
    the estimates are of, with the estimates refined (`refine_budgets`). Without probes the
    observed build's programs are the plain build's instruction for instruction
    (tests/property/test_observed_builds.py): the plain build is then not compiled (None),
    and the observed build's load gives the counts (campaigns and `etran fuzz --programs`)."""
    observed = compile_program(program, observe=True)
    plain = compile_program(program) if observed.probes else None
    refine_budgets(plain or observed)
    return observed, plain


def _measured(elf: bytes) -> dict[str, tuple[int, int]]:
    """Each compiled program's instruction count and stack (its deepest function's)."""
    from etran.backend.objfile import read_object
    from etran.backend.stack import stack_depth
    obj = read_object(elf)
    return {code.name: (code.slot_count + sum(f.slot_count for f in code.subprograms),
                        max(stack_depth(f, obj.little_endian) for f in [code, *code.subprograms]))
            for code in obj.programs}


def _check_frames(program: tir.Program, elf: bytes) -> dict[str, tuple[int, int]]:
    """The stack each compiled program uses, against the kernel's limit: how much LLVM
    spills is known only now (the checker's `stack` rule estimates it beforehand). Returns
    each program's instruction count and stack (`ProgramInfo.insns`, `.stack`), read from
    the same parse."""
    from etran.lower.observe import FIRE_SUFFIX
    sink = DiagnosticSink()
    measured = _measured(elf)
    for code_name, (_count, depth) in measured.items():
        if depth <= MAX_BPF_STACK:
            continue
        name = code_name.removesuffix(FIRE_SUFFIX)
        hook = next((h for h in program.hooks if h.name == name), None)
        span = (hook.name_span or hook.span) if hook is not None else None
        if span is None:
            continue
        sink.error(span, "stack", f"`{name}` needs {depth} bytes of stack once compiled: LLVM "
                   "keeps there the values it cannot hold in registers; the kernel allows "
                   f"{MAX_BPF_STACK}",
                   "fewer values alive at once: sum a long run of reads in a loop, or keep "
                   "values in a map (a PerCpuArray used as scratch space)")
    sink.raise_if_errors()
    return measured


def compile_source(text: str, filename: str = "<input>", observe: bool = False,
                   timings: dict[str, float] | None = None, budget_advisory: bool = False,
                   sink: DiagnosticSink | None = None) -> CompiledObject:
    """`check_source`, then `compile_program`; `budget_advisory` and `sink` as for
    `check_source` (a budget refusal made a warning is left in `sink`)."""
    t = timings if timings is not None else {}
    program = check_source(text, filename, timings=t, sink=sink, budget_advisory=budget_advisory)
    return compile_program(program, observe, t)


def compile_file(path: str | Path, observe: bool = False,
                 timings: dict[str, float] | None = None, budget_advisory: bool = False,
                 sink: DiagnosticSink | None = None) -> CompiledObject:
    p = Path(path)
    return compile_source(p.read_text(), str(p), observe, timings, budget_advisory, sink)

"""From an LLVM module to a BPF ELF object: optimise for `bpfel`, cpu v3, and emit.

llvmlite runs LLVM in process (a few milliseconds per program, against 40-60
ms for a clang process). The module is verified before optimisation, so a
lowering bug shows up as an LLVM verifier message, not as a strange object.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import llvmlite.binding as llvm

from etran.ir import tir
from etran.ir.types import MapType

# LLVM's BPF back end treats a frame over 512 bytes as a fatal error and exits the whole
# process; with a higher limit it emits the object, and etran.pipeline measures the frame
# (etran.backend.stack) and reports an overflow as a diagnostic at the hook.
LLVM_STACK_LIMIT = 1 << 20

# IndVarSimplify's loop predication turns a loop without stores whose exits depend on the
# counter (find the first `j` with a property) into exit tests computed before the loop
# and a loop left with no exit at all, reached only when LLVM's unsigned-min reasoning
# says it cannot be. The verifier cannot follow that reasoning: it walks into the loop
# and refuses the program as an infinite loop
# (tests/property/found/loop_exits_predicated_before_the_loop.py).
LLVM_OPTIONS = (f"-bpf-stack-size={LLVM_STACK_LIMIT}", "-indvars-predicate-loops=false")


@functools.cache
def target_machine() -> llvm.TargetMachine:
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    for option in LLVM_OPTIONS:
        llvm.set_option("", option)
    target = llvm.Target.from_triple("bpfel")
    return target.create_target_machine(cpu="v3", opt=2, reloc="static", codemodel="small")


def optimize(module: llvm.ModuleRef) -> None:
    tm = target_machine()
    pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=2))
    pb.getModulePassManager().run(module, pb)


@dataclass(frozen=True, slots=True)
class ProgramInfo:
    name: str
    hook: str          # "xdp" | "egress" | "gen"
    section: str
    insns: int = 0     # instructions as the kernel counts them (insn_cnt), subprograms included
    stack: int = 0     # bytes of stack its deepest function uses (what the verifier checks)


@dataclass(slots=True)
class CompiledObject:
    """A compiled transport: the ELF bytes plus a description of what is in them."""

    elf: bytes
    program: tir.Program
    programs: list[ProgramInfo]
    maps: list[MapType]
    observe: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    llvm_ir: str = ""
    # observation probes in an `observe` build; 0: its programs are the plain build's, so
    # one load gives both the verifier's counts and the test runs (campaigns use this)
    probes: int = 0


def emit_object(ir_text: str, tighten: bool = True) -> bytes:
    """The object LLVM makes of the module, with the peephole passes of etran.backend.peephole
    applied (`tighten=False`: as LLVM left it, to measure what they save)."""
    module = llvm.parse_assembly(ir_text)
    module.verify()
    optimize(module)
    elf = bytes(target_machine().emit_object(module))
    if tighten:
        from etran.backend.peephole import tighten as run_passes
        elf, _ = run_passes(elf)
    return elf

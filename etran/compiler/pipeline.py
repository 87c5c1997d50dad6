"""The compiler's passes, in order, in one place.

    source --parse--> syntax tree --check (+ rules, budget)--> typed program
    typed program --lower--> LLVM IR with debug info --optimise, emit--> BPF ELF object

Each step raises `DiagnosticError` for problems in the user's program; only
bugs in the compiler surface as other exceptions.
"""
from __future__ import annotations

import time
from pathlib import Path

from etran.compiler import tir
from etran.compiler.check import check_source
from etran.compiler.emit import CompiledObject, ProgramInfo, emit_object
from etran.compiler.lower import lower


def check_file(path: str | Path, timings: dict[str, float] | None = None) -> tir.Program:
    p = Path(path)
    return check_source(p.read_text(), str(p), timings=timings)


def compile_program(program: tir.Program, observe: bool = False,
                    timings: dict[str, float] | None = None, keep_ir: bool = False,
                    defects: frozenset[str] = frozenset()) -> CompiledObject:
    """Lower and emit a checked program. `observe` adds the probes `etran run` reads;
    `defects` deliberately miscompiles (tests of the checks that must catch it)."""
    t = timings if timings is not None else {}
    t0 = time.perf_counter()
    module = lower(program, observe=observe, defects=defects)
    text = str(module)
    t1 = time.perf_counter()
    elf = emit_object(text)
    t2 = time.perf_counter()
    t["lower"] = t1 - t0
    t["llvm"] = t2 - t1
    programs = [ProgramInfo(h.name, h.hook or "", "xdp") for h in program.hooks if h.hook != "timer"]
    return CompiledObject(elf, program, programs, list(program.maps), observe, dict(t),
                          text if keep_ir else "")


def compile_source(text: str, filename: str = "<input>", observe: bool = False,
                   timings: dict[str, float] | None = None) -> CompiledObject:
    t = timings if timings is not None else {}
    program = check_source(text, filename, timings=t)
    return compile_program(program, observe, t)


def compile_file(path: str | Path, observe: bool = False,
                 timings: dict[str, float] | None = None) -> CompiledObject:
    p = Path(path)
    return compile_source(p.read_text(), str(p), observe, timings)

"""Lowering the typed program to an LLVM module for the BPF target.

Layout of the module (what libbpf expects from a standard BPF object):
* each map is a global in `.maps` whose debug type is libbpf's BTF map
  definition; each hook is a global function in section `xdp`;
* every DSL function becomes an internal `alwaysinline` function, so the
  verifier sees one frame per hook (locks forbid calls anyway);
* a timer handler is wrapped in a static callback in `.text`, the only form
  the verifier accepts for `bpf_timer_set_callback` (static linkage, named
  parameters in BTF);
* struct values are byte buffers addressed by offset, so the layout is
  exactly the one `etran.ir.types.layout` computed; stack buffers are
  zeroed before use (the verifier rejects reads of uninitialised stack, and
  map keys with garbage padding would miss).
"""
from __future__ import annotations

import llvmlite.ir as ir

from etran.collector import gc_paused
from etran.ir import tir
from etran.ir.types import IntType, MapType
from etran.lower import native
from etran.lower import observe as obs
from etran.lower.context import I8, PTR, ModuleContext, Reach, _obs_struct, fire_map
from etran.lower.statements import FunctionLowering


def lower(program: tir.Program, observe: bool = False,
          defects: frozenset[str] = frozenset(),
          keep_bounds: bool | None = None, unroll: bool = True,
          reached: Reach | None = None, native_egress: bool = False) -> tuple[ir.Module, int]:
    """The LLVM module of a checked program (maps, license, functions, hooks, probes) and
    how many observation probes it holds (`ModuleContext.probes`). Built with the cyclic
    garbage collector paused (`etran.collector`): a module is tens of thousands of
    llvmlite objects, all alive until it is dropped. `compile_program` keeps it paused
    until the module's text is written and the module dropped, so that the next pass frees
    the module having seen it once. `keep_bounds`: whether the hooks keep the packet's
    bounds in registers (`ModuleContext.keep_bounds`); None: where `keeps_bounds` says.
    `unroll`: whether short counted loops are written out (etran.lower.unroll). `reached`:
    `etran.lower.context.reach(program)`, if the caller has it. `native_egress`: the
    @egress hooks as the native path runs them (`etran.lower.native`)."""
    with gc_paused():
        return _lower(program, observe, defects, keep_bounds, unroll, reached, native_egress)


def _lower(program: tir.Program, observe: bool,
           defects: frozenset[str], keep_bounds: bool | None,
           unroll: bool, reached: Reach | None,
           native_egress: bool = False) -> tuple[ir.Module, int]:
    lw = ModuleContext(program, observe, defects, keep_bounds, unroll, reached,
                       native_egress=native_egress and any(h.hook == "egress"
                                                           for h in program.hooks))
    for m in lw.program.maps:
        lw.declare_map(m)
    if lw.native_egress:
        lw.declare_map(native.uplink_map())
    if lw.observe:
        lw.obs_map = MapType(obs.MAP_NAME, "ArrayMap", IntType("u32", 32, False),
                           _obs_struct(), 1, None)
        lw.declare_map(lw.obs_map)
    lic = ir.GlobalVariable(lw.m, ir.ArrayType(I8, 4), "LICENSE")
    lic.initializer = ir.Constant(ir.ArrayType(I8, 4), bytearray(b"GPL\0"))
    lic.section = "license"
    lic.align = 1
    lw.used.append(lic)
    # Functions no hook calls (most of the header library's methods) are not lowered: LLVM
    # would drop them, after parsing them
    for fn in lw.program.functions:
        if (fn.hook is None and id(fn) in lw.reach.functions) or fn.hook == "timer":
            lw.declare_function(fn)
    for hook in lw.program.hooks:
        if hook.hook != "timer":
            lw.declare_hook(hook)
    for fn, irfn in list(lw.functions.items()):
        FunctionLowering(lw, fn, irfn).lower()
    if lw.observe:
        for hook in lw.program.hooks:
            if hook.hook == "timer" and fire_map(lw.program, hook) is not None:
                lw.fire_program(hook)
    used = ir.GlobalVariable(lw.m, ir.ArrayType(PTR, len(lw.used)), "llvm.compiler.used")
    used.initializer = ir.Constant(ir.ArrayType(PTR, len(lw.used)), lw.used)
    used.linkage = "appending"
    used.section = "llvm.metadata"
    lw.di.finish()
    return lw.m, lw.probes


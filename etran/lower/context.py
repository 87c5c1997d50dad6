"""What every part of the lowering shares: LLVM types, the kernel's helpers, the module.

`ModuleContext` owns the LLVM module being built and what is declared in it
(maps, functions, hooks, timer callbacks, intrinsics, debug info); the
function lowering (`etran.lower.function` and the modules built on it) adds
instructions to one function at a time through it.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import llvmlite.ir as ir
import llvmlite.ir.types as llvm_ir_types
from llvmlite.ir import _utils as llvm_utils

from etran.abi import MAP_LOOKUP_ELEM, XDP_MD_INGRESS_IFINDEX, XDP_MD_RX_QUEUE_INDEX
from etran.ir import tir
from etran.ir.types import (
    U8,
    U32,
    U64,
    ArrayType,
    BeType,
    BoolType,
    IntType,
    MapType,
    PacketType,
    StructType,
    Type,
    VoidType,
    layout,
)
from etran.lower import observe as obs
from etran.lower.debuginfo import DebugInfo
from etran.lower.unroll import unrolled_values

# LLVM 22 only knows opaque pointers; llvmlite still builds typed pointers for
# globals and allocas and prints them as `T*` unless this flag is off.
llvm_ir_types.ir_layer_typed_pointers_enabled = False

# Deliberate miscompilations, for tests that prove the differential checks and the
# verifier report catch a wrong compiler. Never set outside tests.
DEFECTS = frozenset({"no-packet-bounds", "unsigned-compare", "no-sign-extend"})
# A @timer handler's callback, `<handler>_timer_cb`, a static function of `.text`: the
# programs that start the timer carry it among their subprograms (etran.analysis.replay).
TIMER_CALLBACK_SUFFIX = "_timer_cb"

TRIPLE = "bpfel"
DATALAYOUT = "e-m:e-p:64:64-i64:64-i128:128-n32:64-S128"

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I16 = ir.IntType(16)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()

MAX_PACKET_OFFSET = 0xFFFF
# copied from the context at hook entry
PKT_INFO_FIELDS = (XDP_MD_INGRESS_IFINDEX, XDP_MD_RX_QUEUE_INDEX)
# Where the record keeps the packet's start and end (8 bytes each) when the program keeps
# them (ModuleContext.keep_bounds), after the u32 fields above.
PKT_INFO_BOUNDS = 8
PKT_INFO_SIZE = PKT_INFO_BOUNDS + 16


def llvm_type(t: Type) -> ir.Type:
    if isinstance(t, BoolType):
        return I1
    if isinstance(t, IntType):
        return ir.IntType(t.bits)
    if isinstance(t, BeType):
        return ir.IntType(t.bits)
    return PTR


class NameScope(llvm_utils.NameScope):  # type: ignore[misc]
    """llvmlite's scope of value names, registering a name in one call instead of three.

    Every value llvmlite makes registers its name in a scope (an instruction's in its
    function's, a metadata node's in the module's): `register` calls `deduplicate`, which
    calls `is_used` once a round, and the unnamed values (most instructions) are renamed
    `.1`, `.2`, ... that way. The same algorithm inlined, so the names, and the text, are
    the ones llvmlite gives."""

    def register(self, name: str, deduplicate: bool = False) -> str:
        used = self._useset
        if name in used:
            if not deduplicate:
                raise llvm_utils.DuplicatedNameError(name)
            counters = self._basenamemap
            basename = name
            while name in used:
                ident = counters[basename] + 1
                counters[basename] = ident
                name = f"{basename}.{ident}"
        used.add(name)
        return name


def fast_names(scope: Any) -> NameScope:
    """`scope`, its names and counters kept, registering through `NameScope.register`."""
    fast = NameScope()
    fast._useset = scope._useset
    fast._basenamemap = scope._basenamemap
    return fast


def new_function(module: ir.Module, fnty: ir.FunctionType, name: str) -> ir.Function:
    """`ir.Function(module, fnty, name)` whose values are named through `NameScope` (its
    arguments, named `.1`, `.2`, ... when made, keep those names and counters)."""
    fn = ir.Function(module, fnty, name)
    fn.scope = fast_names(fn.scope)
    return fn


class Callee:
    """A call target of a given function type (helpers are called through an integer address)."""

    def __init__(self, ptr: ir.Value, fnty: ir.FunctionType) -> None:
        self.ptr = ptr
        self.function_type = fnty
        self.type = PTR

    def get_reference(self) -> str:
        reference: str = self.ptr.get_reference()
        return reference

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ptr, name)


def hook_nodes(program: tir.Program) -> Iterator[object]:
    """Every typed-program node a hook reaches: the hooks' bodies and the functions they
    call (once each). Functions no hook calls (the header library's) are left out."""
    stack: list[object] = [s for fn in program.hooks for s in fn.body]
    seen: set[int] = set()
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, tir.Call) and id(n.func) not in seen:
            seen.add(id(n.func))
            stack.extend(n.func.body)
        stack.extend(tir.children(n))


@dataclass(frozen=True, slots=True)
class Reach:
    """What the lowering decides by from the nodes the hooks reach (`reach`): one walk."""

    functions: frozenset[int]   # the ids of the functions a hook calls, directly or not
    checksums: bool             # a `pkt.checksum`, which is a loop in the compiled code
    loops: int                  # `for` loops
    # of those, the ones the lowering unrolls (etran.lower.unroll), by id: the counter's
    # value in each copy. The lowering reads them here, so that it unrolls exactly the
    # loops `keeps_bounds` counted as gone.
    unrolled: Mapping[int, list[int]]

    def keeps_bounds(self, unroll: bool = True) -> bool:
        """Whether the hooks keep the packet's bounds (`ModuleContext.keep_bounds`): only
        where no loop follows. Kept across a loop, the two pointers are alive in every
        state the verifier walks around it and its pruning works much harder (three times
        the instructions processed over generated programs with loops;
        docs/performance.md), so a program with a loop (a `for`, or a checksum) anywhere a
        hook reaches loads them where used. A loop the lowering unrolls (when `unroll`) is
        no loop."""
        return not self.checksums and self.loops == (len(self.unrolled) if unroll else 0)


def reach(program: tir.Program) -> Reach:
    """`Reach` of a program, from one walk of `hook_nodes`."""
    functions: set[int] = set()
    checksums = False
    loops = 0
    unrolled: dict[int, list[int]] = {}
    for n in hook_nodes(program):
        if isinstance(n, tir.Call):
            functions.add(id(n.func))
        elif isinstance(n, tir.Loop):
            loops += 1
            values = unrolled_values(n)
            if values is not None:
                unrolled[id(n)] = values
        elif isinstance(n, tir.PacketChecksum):
            checksums = True
    return Reach(frozenset(functions), checksums, loops, unrolled)


def keeps_bounds(program: tir.Program, unroll: bool = True) -> bool:
    """`Reach.keeps_bounds` of the program."""
    return reach(program).keeps_bounds(unroll)


class ModuleContext:
    """The LLVM module being built, and everything declared in it."""

    def __init__(self, program: tir.Program, observe: bool = False,
                 defects: frozenset[str] = frozenset(), keep_bounds: bool | None = None,
                 unroll: bool = True, reached: Reach | None = None,
                 native_egress: bool = False) -> None:
        unknown = defects - DEFECTS
        if unknown:
            raise ValueError(f"unknown lowering defects: {sorted(unknown)}")
        self.program = program
        self.observe = observe
        self.defects = defects
        # @egress hooks built to run natively on the far end of the application's veth
        # (etran.runtime.native): their verdicts are translated where they return
        # (`FunctionLowering.ret_verdict`), through the hidden DevMap `native.UPLINK_MAP`
        self.native_egress = native_egress
        self.m = ir.Module(name=program.name)
        self.m.scope = fast_names(self.m.scope)
        self.m.triple = TRIPLE
        self.m.data_layout = DATALAYOUT
        self.di = DebugInfo(self.m, program.filename, program.sources)
        self.map_globals: dict[str, ir.GlobalVariable] = {}
        self.map_index: dict[str, int] = {m.name: i for i, m in enumerate(program.maps)}
        self.functions: dict[tir.Function, ir.Function] = {}
        self.subprograms: dict[tir.Function, Any] = {}
        self.callbacks: dict[tir.Function, ir.Function] = {}
        self._intrinsics: dict[str, ir.Function] = {}
        self.used: list[ir.GlobalValue] = []
        self.obs_map: MapType | None = None
        self.anchors = 0  # uses of checked references anchored so far (FunctionBase.anchor)
        # The packet's bounds loaded once (at each hook's start and after a resize) and kept,
        # as C code keeps `data` and `data_end`, instead of loaded from the context at every
        # use: for programs without loops only (`keeps_bounds`, unless the caller decided).
        self.reach = reach(program) if reached is None else reached
        self.keep_bounds = self.reach.keeps_bounds(unroll) if keep_bounds is None else keep_bounds
        # short counted loops that index with their counter written out (etran.lower.unroll)
        self.unroll = unroll
        # observation probes compiled in (record look-ups and `__fire` programs): with none,
        # an observed build's programs are the plain build's, instruction for instruction
        self.probes = 0

    def declare_map(self, m: MapType) -> None:
        span = m.span
        file = span.file if span else self.program.filename
        gve, members = self.di.map_global(m, span.line if span else 1, file)
        g = ir.GlobalVariable(self.m, ir.LiteralStructType([PTR] * members), m.name)
        g.initializer = ir.Constant(g.value_type, None)
        g.section = ".maps"
        g.align = 8
        g.set_metadata("dbg", gve)
        self.map_globals[m.name] = g
        self.used.append(g)

    def intrinsic(self, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
        if name not in self._intrinsics:
            self._intrinsics[name] = new_function(self.m, ir.FunctionType(ret, args), name)
        return self._intrinsics[name]

    def di_param(self, t: Type) -> Any:
        if isinstance(t, PacketType):
            return self.di.ctx_pointer()
        if isinstance(t, StructType):
            return self.di.pointer(self.di.type(t))
        return self.di.type(t)

    def di_return(self, t: Type) -> Any:
        return None if isinstance(t, VoidType) else self.di.type(t)

    def declare_function(self, fn: tir.Function) -> None:
        # A Packet parameter is two: the context, and the packet-info copy the hook made
        # of its scalar fields (see FunctionLowering.lower).
        params: list[ir.Type] = []
        for p in fn.params:
            params += [PTR, PTR] if isinstance(p.type, PacketType) else [llvm_type(p.type)]
        ret = ir.VoidType() if isinstance(fn.returns, VoidType) else llvm_type(fn.returns)
        name = "__etran_" + fn.name.replace(".", "_")
        copies = 1
        while name in self.m.globals:  # a function's copies (checked per call: see `specialize`)
            copies += 1
            name = f"__etran_{fn.name.replace('.', '_')}_{copies}"
        irfn = new_function(self.m, ir.FunctionType(ret, params), name)
        irfn.linkage = "internal"
        irfn.attributes.add("alwaysinline")
        irfn.attributes.add("nounwind")
        args = iter(irfn.args)
        for p in fn.params:
            next(args).name = p.name
            if isinstance(p.type, PacketType):
                next(args).name = p.name + "_info"
        sp = self.di.subprogram(fn.name, fn.span.file, fn.span.line, self.di_return(fn.returns),
                                [(p.name, self.di_param(p.type)) for p in fn.params], local=True)
        irfn.set_metadata("dbg", sp)
        self.functions[fn] = irfn
        self.subprograms[fn] = sp

    def declare_hook(self, fn: tir.Function) -> None:
        irfn = new_function(self.m, ir.FunctionType(I32, [PTR]), fn.name)
        irfn.section = "xdp"
        irfn.attributes.add("nounwind")
        irfn.args[0].name = "ctx"
        sp = self.di.subprogram(fn.name, fn.span.file, fn.span.line, self.di.int_type(),
                                [("ctx", self.di.ctx_pointer())], local=False)
        irfn.set_metadata("dbg", sp)
        self.functions[fn] = irfn
        self.subprograms[fn] = sp

    def fire_program(self, handler: tir.Function) -> None:
        """`<handler>__fire`: an XDP program that runs a timer handler on demand (tests)."""
        self.probes += 1
        m = fire_map(self.program, handler)
        assert m is not None and m.key is not None
        irfn = new_function(self.m, ir.FunctionType(I32, [PTR]), handler.name + obs.FIRE_SUFFIX)
        irfn.section = "xdp"
        irfn.attributes.add("nounwind")
        irfn.args[0].name = "ctx"
        sp = self.di.subprogram(irfn.name, handler.span.file, handler.span.line,
                                self.di.int_type(), [("ctx", self.di.ctx_pointer())], local=False)
        irfn.set_metadata("dbg", sp)
        b = ir.IRBuilder(irfn.append_basic_block("entry"))
        b.debug_metadata = self.di.location(sp, handler.span.line, handler.span.col)
        zero = b.alloca(I32)
        zero.type = PTR
        b.store(ir.Constant(I32, 0), zero)

        def lookup(map_name: str, key: ir.Value) -> ir.Value:
            fnty = ir.FunctionType(PTR, [PTR, PTR])
            fp = b.inttoptr(ir.Constant(I64, MAP_LOOKUP_ELEM), PTR)
            return b.call(Callee(fp, fnty), [self.map_globals[map_name], key])

        record = lookup(obs.MAP_NAME, zero)
        have_record = irfn.append_basic_block("record")
        missing = irfn.append_basic_block("missing")
        b.cbranch(b.icmp_unsigned("!=", record, ir.Constant(PTR, None)), have_record, missing)
        b.position_at_end(missing)
        b.ret(ir.Constant(I32, 1))
        b.position_at_end(have_record)
        key_ptr = b.gep(record, [ir.Constant(I64, obs.OFF_KEY)], source_etype=I8)
        value = lookup(m.name, key_ptr)
        found = irfn.append_basic_block("found")
        b.cbranch(b.icmp_unsigned("!=", value, ir.Constant(PTR, None)), found, missing)
        b.position_at_end(found)
        key: ir.Value = key_ptr
        if not isinstance(m.key, StructType):
            key = b.load(key_ptr, typ=llvm_type(m.key), align=1)
        b.call(self.functions[handler], [key, value])
        b.ret(ir.Constant(I32, 2))

    def timer_callback(self, handler: tir.Function) -> ir.Function:
        """The static `.text` callback the kernel calls: (map, key, value) -> 0."""
        if handler in self.callbacks:
            return self.callbacks[handler]
        cb = new_function(self.m, ir.FunctionType(I32, [PTR, PTR, PTR]),
                          handler.name + TIMER_CALLBACK_SUFFIX)
        cb.linkage = "internal"
        cb.attributes.add("nounwind")
        cb.attributes.add("noinline")
        for a, n in zip(cb.args, ("map", "key", "value")):
            a.name = n
        vp = self.di.void_pointer()
        sp = self.di.subprogram(cb.name, handler.span.file, handler.span.line, self.di.int_type(),
                                [("map", vp), ("key", vp), ("value", vp)], local=True)
        cb.set_metadata("dbg", sp)
        self.callbacks[handler] = cb
        b = ir.IRBuilder(cb.append_basic_block("entry"))
        b.debug_metadata = self.di.location(sp, handler.span.line, handler.span.col)
        key_type = handler.params[0].type
        key: ir.Value = cb.args[1]
        if not isinstance(key_type, StructType):
            key = b.load(cb.args[1], typ=llvm_type(key_type), align=key_type.size)  # type: ignore[union-attr]
        target = self.functions[handler]
        b.call(target, [key, cb.args[2]])
        b.ret(ir.Constant(I32, 0))
        return cb


def fire_map(program: tir.Program, handler: tir.Function) -> MapType | None:
    """The map whose entries a timer handler fires for, if a test can fire it on demand."""
    assert handler.timer_field is not None
    st, _ = handler.timer_field
    maps = [m for m in program.maps if m.value is st]
    if len(maps) != 1 or maps[0].key is None or maps[0].key.size > obs.MAX_KEY:
        return None
    return maps[0]


def _obs_struct() -> StructType:
    timer = StructType("__etran_obs_timer", False, "__etran")
    layout(timer, [("map", U32, None), ("field", U32, None), ("delay", U64, None)])
    st = StructType("__etran_obs", False, "__etran")
    layout(st, [("redirect_map", U32, None), ("redirect_key", U32, None),
                ("timer_count", U32, None), ("pad", U32, None),
                ("timers", ArrayType(timer, obs.MAX_TIMERS), None),
                ("now_ns", U64, None), ("random_u32", U32, None), ("pad2", U32, None),
                ("key", ArrayType(U8, obs.MAX_KEY), None)])
    assert st.size == obs.SIZE
    return st


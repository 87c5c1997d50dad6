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
  exactly the one `etran.compiler.types.layout` computed; stack buffers are
  zeroed before use (the verifier rejects reads of uninitialised stack, and
  map keys with garbage padding would miss).
"""
from __future__ import annotations

from typing import Any

import llvmlite.ir as ir
import llvmlite.ir.types as llvm_ir_types

from etran.compiler import observe as obs
from etran.compiler import tir
from etran.compiler.debuginfo import DebugInfo
from etran.compiler.lower_expr import (I1, I8, I32, I64, MAP_LOOKUP, PKT_INFO_FIELDS, PTR,
                                       SPIN_LOCK, SPIN_UNLOCK, ExprLowering, llvm_type)
from etran.compiler.types import (ArrayType, BoolType, IntType, MapType, PacketType, StructType,
                                  Type, VoidType)

# LLVM 22 only knows opaque pointers; llvmlite still builds typed pointers for
# globals and allocas and prints them as `T*` unless this flag is off.
llvm_ir_types.ir_layer_typed_pointers_enabled = False

# Deliberate miscompilations, for tests that prove the differential checks and the
# verifier report catch a wrong compiler. Never set outside tests.
DEFECTS = frozenset({"no-packet-bounds", "unsigned-compare", "no-sign-extend"})

TRIPLE = "bpfel"
DATALAYOUT = "e-m:e-p:64:64-i64:64-i128:128-n32:64-S128"


class Lowering:
    def __init__(self, program: tir.Program, observe: bool = False,
                 defects: frozenset[str] = frozenset()) -> None:
        unknown = defects - DEFECTS
        if unknown:
            raise ValueError(f"unknown lowering defects: {sorted(unknown)}")
        self.program = program
        self.observe = observe
        self.defects = defects
        self.m = ir.Module(name=program.name)
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

    # ---------------------------------------------------------------- module
    def run(self) -> ir.Module:
        for m in self.program.maps:
            self.declare_map(m)
        if self.observe:
            self.obs_map = MapType(obs.MAP_NAME, "ArrayMap", IntType("u32", 32, False),
                                   _obs_struct(), 1, None)
            self.declare_map(self.obs_map)
        lic = ir.GlobalVariable(self.m, ir.ArrayType(I8, 4), "LICENSE")
        lic.initializer = ir.Constant(ir.ArrayType(I8, 4), bytearray(b"GPL\0"))
        lic.section = "license"
        lic.align = 1
        self.used.append(lic)
        for fn in self.program.functions:
            if fn.hook is None or fn.hook == "timer":
                self.declare_function(fn)
        for hook in self.program.hooks:
            if hook.hook != "timer":
                self.declare_hook(hook)
        for fn, irfn in list(self.functions.items()):
            FunctionLowering(self, fn, irfn).lower()
        if self.observe:
            for hook in self.program.hooks:
                if hook.hook == "timer" and fire_map(self.program, hook) is not None:
                    self.fire_program(hook)
        used = ir.GlobalVariable(self.m, ir.ArrayType(PTR, len(self.used)), "llvm.compiler.used")
        used.initializer = ir.Constant(ir.ArrayType(PTR, len(self.used)), self.used)
        used.linkage = "appending"
        used.section = "llvm.metadata"
        self.di.finish()
        return self.m

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
            self._intrinsics[name] = ir.Function(self.m, ir.FunctionType(ret, args), name)
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
        irfn = ir.Function(self.m, ir.FunctionType(ret, params), name)
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
        irfn = ir.Function(self.m, ir.FunctionType(I32, [PTR]), fn.name)
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
        m = fire_map(self.program, handler)
        assert m is not None and m.key is not None
        irfn = ir.Function(self.m, ir.FunctionType(I32, [PTR]), handler.name + obs.FIRE_SUFFIX)
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
            from etran.compiler.lower_expr import _Callee
            fp = b.inttoptr(ir.Constant(I64, MAP_LOOKUP), PTR)
            return b.call(_Callee(fp, fnty), [self.map_globals[map_name], key])

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
        cb = ir.Function(self.m, ir.FunctionType(I32, [PTR, PTR, PTR]), f"{handler.name}_timer_cb")
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


class FunctionLowering(ExprLowering):
    def __init__(self, lw: Lowering, fn: tir.Function, irfn: ir.Function) -> None:
        self.lw = lw
        self.fn = fn
        self.irfn = irfn
        self.sp = lw.subprograms[fn]
        self.entry = irfn.append_basic_block("entry")
        body = irfn.append_basic_block("body")
        self.b = ir.IRBuilder(body)
        self.alloca_builder = ir.IRBuilder(self.entry)
        self.slots: dict[tir.Var, ir.Value] = {}
        self.ctx: ir.Value = ir.Constant(PTR, None)
        self.pkt_info: ir.Value = ir.Constant(PTR, None)
        self.loops: list[tuple[ir.Block, ir.Block]] = []

    # ---------------------------------------------------------------- memory helpers
    def temp(self, size: int, align: int) -> ir.Value:
        # 8-aligned whatever the type: packed headers built on the stack would otherwise
        # land at odd offsets, and the verifier refuses misaligned stack accesses.
        return self._alloca(ir.ArrayType(I8, max(size, 1)), 8)

    def _alloca(self, ty: ir.Type, align: int) -> ir.Value:
        a = self.alloca_builder.alloca(ty)
        a.align = align
        a.type = PTR  # an opaque pointer, like every pointer in this module
        return a

    def zero(self, ptr: ir.Value, size: int) -> None:
        fn = self.lw.intrinsic("llvm.memset.p0.i64", ir.VoidType(), [PTR, I8, I64, I1])
        self.b.call(fn, [ptr, ir.Constant(I8, 0), ir.Constant(I64, size), ir.Constant(I1, 0)])

    def copy(self, dst: ir.Value, src: ir.Value, size: int, align: int = 1) -> None:
        """Copy `size` bytes in chunks as wide as both ends are known to be aligned.

        A memcpy through pointers LLVM knows nothing about (map values, packet views)
        would be expanded byte by byte; the stack needs aligned accesses anyway."""
        off = 0
        for width in (8, 4, 2, 1):
            if width > align:
                continue
            ty = ir.IntType(width * 8)
            while size - off >= width:
                at = [ir.Constant(I64, off)]
                s_ptr = self.b.gep(src, at, source_etype=I8) if off else src
                d_ptr = self.b.gep(dst, at, source_etype=I8) if off else dst
                self.b.store(self.b.load(s_ptr, typ=ty, align=width), d_ptr, align=width)
                off += width

    def locate(self, span: Any) -> None:
        self.b.debug_metadata = self.lw.di.location(self.sp, span.line, span.col)

    # ---------------------------------------------------------------- bodies
    def lower(self) -> None:
        self.locate(self.fn.span)
        self.alloca_builder.debug_metadata = self.b.debug_metadata
        if self.fn.hook in ("xdp", "egress", "gen"):
            self.ctx = self.irfn.args[0]
            # The context's scalar fields are read once, here at the start: the verifier
            # only allows context loads at constant offsets from the unmodified context
            # pointer, and LLVM merges or hoists loads made later in branches into loads
            # through computed addresses ("dereference of modified ctx ptr").
            self.pkt_info = self._alloca(ir.ArrayType(I32, 2), 8)
            for i, off in enumerate(PKT_INFO_FIELDS):
                self.b.store(self.ctx_field(off), self.info_field(i), align=4)
        else:
            args = iter(self.irfn.args)
            for p in self.fn.params:
                arg = next(args)
                if isinstance(p.type, PacketType):
                    self.ctx, self.pkt_info = arg, next(args)
                    continue
                self.slots[p] = self.var_slot(p)
                self.b.store(arg, self.slots[p])
        for v in self.fn.locals:
            if v not in self.slots and not isinstance(v.type, PacketType):
                self.slots[v] = self.var_slot(v)
        self.block(self.fn.body)
        if not self.b.block.is_terminated:
            if isinstance(self.fn.returns, VoidType):
                self.b.ret_void()
            else:
                self.b.unreachable()
        self.alloca_builder.branch(self.irfn.blocks[1])

    def var_slot(self, v: tir.Var) -> ir.Value:
        t = llvm_type(v.type)
        size = 8 if t == PTR else max(t.width // 8, 1)  # type: ignore[union-attr]
        return self._alloca(t, size)

    def block(self, body: tuple[tir.Stmt, ...]) -> None:
        for s in body:
            if self.b.block.is_terminated:
                return  # the rest is unreachable
            self.locate(s.span)
            getattr(self, "s_" + type(s).__name__)(s)

    def s_Assign(self, s: tir.Assign) -> None:
        v = self.expr(s.value)
        self.b.store(v, self.slots[s.var])

    def s_Store(self, s: tir.Store) -> None:
        storage = s.place.type
        align = self.place_align(s.place)
        if s.op is None:
            value = self.expr(s.value)          # Python's order: the value, then the target
            where = self.resolve(s.place)
        else:
            # `x[i] op= v`: the target, its current value (0 if i is out of range), then v,
            # which is evaluated even when the index is out of range, as Python would.
            where = self.resolve(s.place)
            t = _value_type(storage)
            cur = self.guarded(s.place, lambda addr: self.load_scalar(addr, storage, align),
                               ir.Constant(llvm_type(t), 0), where)
            assert cur is not None
            value = self.arith(s.op, cur, self.expr(s.value), t, s.value.type)
        result = value

        def store(addr: ir.Value) -> None:
            self.store_scalar(addr, storage, result, align)

        self.guarded(s.place, store, None, where)

    def s_CopyStruct(self, s: tir.CopyStruct) -> None:
        # Source and destination may overlap (two views of one packet): copy through a
        # stack buffer, so the result is that of reading everything first (as Python does).
        size = s.place.type.size  # type: ignore[union-attr]
        src = self.expr(s.value)
        src_align = self.place_align(s.value.place) if isinstance(s.value, tir.AddrOf) else 8
        tmp = self.temp(size, 8)
        self.copy(tmp, src, size, src_align)
        dst = self.address(s.place)
        self.copy(dst, tmp, size, self.place_align(s.place))

    def s_ExprStmt(self, s: tir.ExprStmt) -> None:
        self.expr(s.value)

    def s_If(self, s: tir.If) -> None:
        test = self.expr(s.test)
        then = self.new_block("if.then")
        other = self.new_block("if.else")
        done = self.new_block("if.end")
        self.b.cbranch(test, then, other)
        falls_through = False
        for blk, body in ((then, s.body), (other, s.orelse)):
            self.b.position_at_end(blk)
            self.block(body)
            if not self.b.block.is_terminated:
                self.b.branch(done)
                falls_through = True
        self.b.position_at_end(done)
        if not falls_through:
            self.b.unreachable()

    def s_Loop(self, s: tir.Loop) -> None:
        b = self.b
        t = s.var.type
        assert isinstance(t, IntType)
        ty = ir.IntType(t.bits)
        k_slot = self._alloca(I64, 8)
        b.store(ir.Constant(I64, 0), k_slot)
        stop = None
        if not isinstance(s.stop, tir.Const):
            # Evaluated once, before the first iteration, as Python evaluates `range(...)`.
            # Opaque: if LLVM proved the stop small (`3 >> n`) it would drop the counter
            # check against the bound, and the verifier cannot prove it.
            stop = self.barrier(self.expr(s.stop))
        head = self.new_block("for.head")
        body = self.new_block("for.body")
        latch = self.new_block("for.latch")
        exit_ = self.new_block("for.exit")
        b.branch(head)
        b.position_at_end(head)
        k = b.load(k_slot, typ=I64)
        go = b.icmp_unsigned("<", k, ir.Constant(I64, s.bound))
        start = self.const(t, s.start.value)  # type: ignore[union-attr]
        if stop is not None:
            i = b.add(start, b.mul(b.trunc(k, ty) if t.bits < 64 else k, ir.Constant(ty, s.step)))
            op = "<" if s.step > 0 else ">"
            more = b.icmp_signed(op, i, stop) if t.signed else b.icmp_unsigned(op, i, stop)
            go = b.and_(go, more)
        b.cbranch(go, body, exit_)
        b.position_at_end(body)
        k2 = b.load(k_slot, typ=I64)
        i = b.add(start, b.mul(b.trunc(k2, ty) if t.bits < 64 else k2, ir.Constant(ty, s.step)))
        b.store(i, self.slots[s.var])
        self.loops.append((latch, exit_))
        self.block(s.body)
        self.loops.pop()
        if not self.b.block.is_terminated:
            self.b.branch(latch)
        self.b.position_at_end(latch)
        k3 = self.b.load(k_slot, typ=I64)
        self.b.store(self.b.add(k3, ir.Constant(I64, 1)), k_slot)
        self.b.branch(head)
        self.b.position_at_end(exit_)

    def s_Break(self, s: tir.Break) -> None:
        self.b.branch(self.loops[-1][1])

    def s_Continue(self, s: tir.Continue) -> None:
        self.b.branch(self.loops[-1][0])

    def s_Return(self, s: tir.Return) -> None:
        if s.value is None:
            if self.fn.hook is not None and self.fn.hook != "timer":
                self.b.ret(ir.Constant(I32, 2))
            else:
                self.b.ret_void()
            return
        self.b.ret(self.expr(s.value))

    def s_Locked(self, s: tir.Locked) -> None:
        lock = self.address(s.lock)
        self.helper(SPIN_LOCK, I64, [lock])
        self.block(s.body)
        if not self.b.block.is_terminated:
            self.locate(s.span)
            self.helper(SPIN_UNLOCK, I64, [lock])

    # ---------------------------------------------------------------- observation probes
    def obs_slot(self) -> tuple[ir.Value, ir.Block, ir.Block]:
        """Look up the observation record; returns (pointer, block to fill it, block after)."""
        assert self.lw.obs_map is not None
        key = self.temp(4, 4)
        self.b.store(ir.Constant(I32, 0), key)
        p = self.helper(MAP_LOOKUP, PTR, [self.lw.map_globals[obs.MAP_NAME], key])
        self.lookup_block = self.b.block
        fill = self.new_block("obs.fill")
        done = self.new_block("obs.done")
        self.b.cbranch(self.b.icmp_unsigned("!=", p, ir.Constant(PTR, None)), fill, done)
        self.b.position_at_end(fill)
        return p, fill, done

    def field_ptr(self, base: ir.Value, off: int) -> ir.Value:
        return self.b.gep(base, [ir.Constant(I64, off)], source_etype=I8)

    def observe_redirect(self, e: tir.Redirect, key: ir.Value) -> None:
        if not self.lw.observe:
            return
        p, _, done = self.obs_slot()
        self.b.store(ir.Constant(I32, self.lw.map_index[e.map.name] + 1),
                     self.field_ptr(p, obs.OFF_REDIRECT_MAP), align=4)
        self.b.store(key, self.field_ptr(p, obs.OFF_REDIRECT_KEY), align=4)
        self.b.branch(done)
        self.b.position_at_end(done)

    def observed_input(self, offset: int, ty: ir.IntType) -> ir.Value:
        """An input the runner wrote into the observation record (0 if it is missing)."""
        p, fill, done = self.obs_slot()
        v = self.b.load(self.field_ptr(p, offset), typ=ty, align=ty.width // 8)
        self.b.branch(done)
        self.b.position_at_end(done)
        phi = self.b.phi(ty)
        phi.add_incoming(ir.Constant(ty, 0), self.lookup_block)
        phi.add_incoming(v, fill)
        return phi

    def observe_timer(self, e: tir.TimerStart, delay: ir.Value) -> None:
        p, _, done = self.obs_slot()
        count_ptr = self.field_ptr(p, obs.OFF_TIMER_COUNT)
        count = self.b.load(count_ptr, typ=I32, align=4)
        room = self.new_block("obs.room")
        self.b.cbranch(self.b.icmp_unsigned("<", count, ir.Constant(I32, obs.MAX_TIMERS)), room, done)
        self.b.position_at_end(room)
        idx = self.barrier(self.b.zext(count, I64))
        entry = self.b.gep(self.field_ptr(p, obs.OFF_TIMERS),
                           [self.b.mul(idx, ir.Constant(I64, obs.TIMER.size))], source_etype=I8)
        assert isinstance(e.timer, tir.FieldPlace)
        self.b.store(ir.Constant(I32, self.lw.map_index[e.map.name] + 1), entry, align=4)
        self.b.store(ir.Constant(I32, e.timer.field.offset), self.field_ptr(entry, 4), align=4)
        self.b.store(delay, self.field_ptr(entry, 8), align=8)
        self.b.store(self.b.add(count, ir.Constant(I32, 1)), count_ptr, align=4)
        self.b.branch(done)
        self.b.position_at_end(done)


def _value_type(storage: Type) -> IntType:
    from etran.compiler.types import BeType
    if isinstance(storage, BeType):
        return storage.value_type
    assert isinstance(storage, IntType)
    return storage


def fire_map(program: tir.Program, handler: tir.Function) -> MapType | None:
    """The map whose entries a timer handler fires for, if a test can fire it on demand."""
    assert handler.timer_field is not None
    st, _ = handler.timer_field
    maps = [m for m in program.maps if m.value is st]
    if len(maps) != 1 or maps[0].key is None or maps[0].key.size > obs.MAX_KEY:
        return None
    return maps[0]


def _obs_struct() -> StructType:
    from etran.compiler.types import U8, U32, U64, layout
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


def lower(program: tir.Program, observe: bool = False,
          defects: frozenset[str] = frozenset()) -> ir.Module:
    return Lowering(program, observe, defects).run()


__all__ = ["lower", "Lowering", "BoolType", "ArrayType"]

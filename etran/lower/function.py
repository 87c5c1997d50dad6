"""The state of one function being lowered, and the small builders every part uses.

`FunctionBase` holds the IR builder, the stack slots of the function's
variables and the hook's context pointer, and knows how to call a helper, make
a stack buffer, zero or copy memory, read the context and write the
observation probes. `etran.lower.expressions` and `etran.lower.statements`
build on it, in that order.
"""
from __future__ import annotations

from typing import Any

import llvmlite.ir as ir

from etran.abi import MAP_LOOKUP_ELEM, XDP_MD_DATA, XDP_MD_DATA_END
from etran.ir import tir
from etran.ir.types import Type
from etran.lower import observe as obs
from etran.lower.context import (
    I1,
    I8,
    I32,
    I64,
    PKT_INFO_BOUNDS,
    PKT_INFO_FIELDS,
    PTR,
    Callee,
    ModuleContext,
    llvm_type,
)


class FunctionBase:
    def __init__(self, lw: ModuleContext, fn: tir.Function, irfn: ir.Function) -> None:
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
        # variables only ever assigned packet views: the flag that says the view fits
        self.views: dict[tir.Var, ir.Value] = {}

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

    def var_slot(self, v: tir.Var) -> ir.Value:
        t = llvm_type(v.type)
        size = 8 if t == PTR else max(t.width // 8, 1)
        return self._alloca(t, size)

    # ---------------------------------------------------------------- helpers
    def helper(self, hid: int, ret: ir.Type, args: list[ir.Value]) -> ir.Value:
        fnty = ir.FunctionType(ret, [a.type for a in args])
        fp = self.b.inttoptr(ir.Constant(I64, hid), PTR)
        return self.b.call(Callee(fp, fnty), args)

    def barrier(self, v: ir.Value) -> ir.Value:
        """An empty inline-asm copy of `v` that LLVM cannot see through (libbpf's barrier_var)."""
        asm = ir.InlineAsm(ir.FunctionType(v.type, [v.type]), "", "=r,0", side_effect=True)
        return self.b.call(asm, [v])

    def anchor(self, v: ir.Value) -> ir.Value:
        """`v`, opaque to LLVM's optimisations and free in the object: a call of
        `llvm.bpf.passthrough`, which the BPF back end removes before it selects
        instructions (the inline-asm `barrier` stays to the end and costs a register
        copy). Each anchor has a number of its own, so two anchors of one reference in the
        two sides of a branch are never merged into one before the branch, nor sunk into
        one after it. Merged, the loads through them become one load at a variable offset
        (`view + (c ? 1 : 0)` for `ip.tos if c else ip.ver_ihl`), and a packet view moved
        by a variable amount loses its checked range in the verifier.

        What it keeps from LLVM's IR passes: address arithmetic hoisted above the null
        test that proved the reference, two null tests folded into one test of `a | b`,
        two reads merged into one at a variable offset. It cannot keep a range check or a
        loop's shape from the back end: that is the `barrier`'s job."""
        self.lw.anchors += 1
        tn = "p0" if v.type == PTR else f"i{v.type.width}"
        fn = self.lw.intrinsic(f"llvm.bpf.passthrough.{tn}.{tn}", v.type, [I32, v.type])
        return self.b.call(fn, [ir.Constant(I32, self.lw.anchors), v])

    def assume(self, fact: ir.Value) -> None:
        """Tell LLVM `fact` holds here (`llvm.assume`): no instruction in the object."""
        self.b.call(self.lw.intrinsic("llvm.assume", ir.VoidType(), [I1]), [fact])

    def new_block(self, name: str) -> ir.Block:
        return self.irfn.append_basic_block(name)

    def const(self, t: Type, v: int) -> ir.Constant:
        return ir.Constant(llvm_type(t), v & ((1 << llvm_type(t).width) - 1))

    def map_ptr(self, m: Any) -> ir.Value:
        return self.lw.map_globals[m.name]

    def ctx_field(self, offset: int) -> ir.Value:
        """A u32 of the context."""
        addr = self.b.gep(self.ctx, [ir.Constant(I64, offset)], source_etype=I8) if offset else self.ctx
        return self.b.load(addr, typ=I32, align=4)

    def ctx_pointer(self, offset: int) -> ir.Value:
        """One of the packet's bounds, loaded from the context where it is used, every
        time (volatile), through a context pointer of its own (an `anchor`). Two equal
        loads at the head of both sides of a branch are otherwise hoisted above it, and
        the u32 they leave reaches its zero extension through a phi: widened by a 32-bit
        move, the pointer becomes a number for the verifier
        (tests/property/found/packet_bound_hoisted_out_of_both_branches.py). Merged with
        an earlier load or carried around a loop, the u32 fails in the same way, which
        `volatile` prevents. The 64-bit value passes the inline-asm `barrier` before it
        becomes a pointer: LLVM otherwise knows its upper half is zero, keeps only the
        u32 and spills that with a 32-bit store, which the verifier refuses for a pointer
        ("invalid size of register spill",
        tests/property/found/packet_start_spilled_as_u32.py)."""
        base = self.anchor(self.ctx)
        addr = self.b.gep(base, [ir.Constant(I64, offset)], source_etype=I8) if offset else base
        ld = VolatileLoad(self.b.block, addr, typ=I32)
        ld.align = 4
        self.b._insert(ld)
        return self.b.inttoptr(self.barrier(self.b.zext(ld, I64)), PTR)

    def info_field(self, index: int) -> ir.Value:
        return self.b.gep(self.pkt_info, [ir.Constant(I64, 4 * index)], source_etype=I8) \
            if index else self.pkt_info

    def ctx_scalar(self, offset: int) -> ir.Value:
        """ingress_ifindex or rx_queue_index, from the copy the hook made at its start."""
        return self.b.load(self.info_field(PKT_INFO_FIELDS.index(offset)), typ=I32, align=4)

    def packet_bounds(self) -> tuple[ir.Value, ir.Value]:
        """The packet's start and end: loaded from the context where used, or, in a program
        that keeps them (`ModuleContext.keep_bounds`), from the hook's packet-info record."""
        if self.lw.keep_bounds:
            return (self.b.load(self.bound_field(0), typ=PTR, align=8),
                    self.b.load(self.bound_field(1), typ=PTR, align=8))
        return self.ctx_pointer(XDP_MD_DATA), self.ctx_pointer(XDP_MD_DATA_END)

    def bound_field(self, which: int) -> ir.Value:
        """Where the packet-info record keeps the packet's start (0) or end (1)."""
        return self.b.gep(self.pkt_info, [ir.Constant(I64, PKT_INFO_BOUNDS + 8 * which)],
                          source_etype=I8)

    def store_bounds(self) -> None:
        """Load the packet's bounds from the context into the record (`keep_bounds`): at
        the hook's start and after every resize, the only points where they change."""
        for which, offset in enumerate((XDP_MD_DATA, XDP_MD_DATA_END)):
            self.b.store(self.ctx_pointer(offset), self.bound_field(which), align=8)

    # ---------------------------------------------------------------- observation probes
    def obs_slot(self) -> tuple[ir.Value, ir.Block, ir.Block]:
        """Look up the observation record; returns (pointer, block to fill it, block after)."""
        assert self.lw.obs_map is not None
        self.lw.probes += 1
        key = self.temp(4, 4)
        self.b.store(ir.Constant(I32, 0), key)
        p = self.helper(MAP_LOOKUP_ELEM, PTR, [self.lw.map_globals[obs.MAP_NAME], key])
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
        # every start is counted; the first MAX_TIMERS are recorded
        self.b.store(self.b.add(count, ir.Constant(I32, 1)), count_ptr, align=4)
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
        self.b.branch(done)
        self.b.position_at_end(done)


def view_vars(fn: tir.Function) -> list[tir.Var]:
    """The local variables only ever assigned a packet view (`ExprLowering.header_parts`).
    Assignments are statements, so only statement bodies are walked, not expressions."""
    assigned: dict[tir.Var, bool] = {}
    todo: list[tir.Stmt] = list(fn.body)
    while todo:
        n = todo.pop()
        if isinstance(n, tir.Assign):
            ok = isinstance(n.value, tir.PacketHeader)
            assigned[n.var] = assigned.get(n.var, True) and ok
        elif isinstance(n, tir.If):
            todo.extend(n.body)
            todo.extend(n.orelse)
        elif isinstance(n, (tir.Loop, tir.Locked)):
            todo.extend(n.body)
    return [v for v, ok in assigned.items() if ok and v not in fn.params]


class VolatileLoad(ir.LoadInstr):  # type: ignore[misc]
    """`load volatile`, which llvmlite's builder does not write."""

    def descr(self, buf: list[str]) -> None:
        text: list[str] = []
        super().descr(text)
        buf.append(text[0].replace("load ", "load volatile ", 1))

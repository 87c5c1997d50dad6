"""Lowering statements: assignments, stores, branches, bounded loops, locked blocks.

A `for` loop keeps a 64-bit trip counter next to the loop variable and tests it
against the constant bound the checker proved, so the verifier sees a bounded
loop whatever the runtime stop; `with v.lock:` is bpf_spin_lock/unlock around
the block (the checker has ruled out every way to leave it early).
"""
from __future__ import annotations

import llvmlite.ir as ir

from etran.abi import SPIN_LOCK, SPIN_UNLOCK
from etran.ir import tir
from etran.ir.types import BeType, IntType, PacketType, Type, VoidType
from etran.lower import native
from etran.lower.context import I1, I8, I32, I64, PKT_INFO_FIELDS, PKT_INFO_SIZE, llvm_type
from etran.lower.expressions import ExprLowering
from etran.lower.function import view_vars
from etran.lower.unroll import substitute


class FunctionLowering(ExprLowering):
    """Lowers one function: `lower()` emits its whole body."""

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
            self.pkt_info = self._alloca(ir.ArrayType(I8, PKT_INFO_SIZE), 8)
            for i, off in enumerate(PKT_INFO_FIELDS):
                self.b.store(self.ctx_field(off), self.info_field(i), align=4)
            if self.lw.keep_bounds:
                self.store_bounds()
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
        for v in view_vars(self.fn):
            # the view's address in the variable's slot, whether it fits here (not None
            # until assigned: a use before is refused by the checker)
            self.views[v] = self._alloca(I1, 1)
            self.alloca_builder.store(ir.Constant(I1, 0), self.views[v])
        self.block(self.fn.body)
        if not self.b.block.is_terminated:
            if isinstance(self.fn.returns, VoidType):
                self.b.ret_void()
            else:
                self.b.unreachable()
        self.alloca_builder.branch(self.irfn.blocks[1])

    def block(self, body: tuple[tir.Stmt, ...]) -> None:
        for s in body:
            if self.b.block.is_terminated:
                return  # the rest is unreachable
            self.locate(s.span)
            getattr(self, "s_" + type(s).__name__)(s)

    def s_Assign(self, s: tir.Assign) -> None:
        if s.var in self.views:
            assert isinstance(s.value, tir.PacketHeader)
            view, fits = self.header_parts(s.value)
            self.b.store(view, self.slots[s.var])
            self.b.store(fits, self.views[s.var])
            return
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
        values = self.lw.reach.unrolled.get(id(s)) if self.lw.unroll else None
        if values is not None:
            self.unrolled(s, values)
            return
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
        start = self.const(t, s.start.value)
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

    def unrolled(self, s: tir.Loop, values: list[int]) -> None:
        """One copy of the body per iteration, the counter a constant in each
        (etran.lower.unroll); `continue` goes to the next copy, `break` past the last."""
        assert isinstance(s.var.type, IntType)
        exit_ = self.new_block("unrolled.exit")
        for value in values:
            following = self.new_block("unrolled.next")
            self.b.store(self.const(s.var.type, value), self.slots[s.var])
            self.loops.append((following, exit_))
            self.block(tuple(substitute(stmt, s.var, value) for stmt in s.body))  # type: ignore[misc]
            self.loops.pop()
            if not self.b.block.is_terminated:
                self.b.branch(following)
            self.b.position_at_end(following)
        self.b.branch(exit_)
        self.b.position_at_end(exit_)

    def s_Break(self, s: tir.Break) -> None:
        self.b.branch(self.loops[-1][1])

    def s_Continue(self, s: tir.Continue) -> None:
        self.b.branch(self.loops[-1][0])

    def s_Return(self, s: tir.Return) -> None:
        if s.value is None:
            if self.fn.hook is not None and self.fn.hook != "timer":
                self.ret_verdict(ir.Constant(I32, 2))
            else:
                self.b.ret_void()
            return
        if self.fn.hook is not None and self.fn.hook != "timer":
            self.ret_verdict(self.expr(s.value))
        else:
            self.b.ret(self.expr(s.value))

    def ret_verdict(self, verdict: ir.Value) -> None:
        """A hook's return: the verdict itself, or in a native @egress build what the native
        path must return for the verdict to keep its meaning (`etran.lower.native`)."""
        if self.fn.hook == "egress" and self.lw.native_egress:
            native.lower_return(self, verdict)
        else:
            self.b.ret(verdict)

    def s_Locked(self, s: tir.Locked) -> None:
        lock = self.address(s.lock)
        self.helper(SPIN_LOCK, I64, [lock])
        self.block(s.body)
        if not self.b.block.is_terminated:
            self.locate(s.span)
            self.helper(SPIN_UNLOCK, I64, [lock])


def _value_type(storage: Type) -> IntType:
    if isinstance(storage, BeType):
        return storage.value_type
    assert isinstance(storage, IntType)
    return storage


"""Lowering expressions and places to LLVM IR.

Rules that keep the kernel and the interpreter in agreement:
* no operation may reach LLVM with undefined behaviour: division and modulo
  guard their divisor, shifts guard their count, signed division is built
  from unsigned division (cpu v3 has no sdiv) with Python's floor rules;
* no `nsw`/`nuw`/`exact` flags: integer arithmetic wraps;
* a value whose range the verifier must see checked (a variable packet offset, an
  index, a loop's runtime stop) passes through an empty inline-asm `barrier`
  (`barrier_var` in libbpf) before its check, so that no part of LLVM, the back
  end included, drops a check it can prove and the verifier cannot, nor
  re-associates the arithmetic into a form whose packet range the verifier
  cannot follow;
* a reference used after the null test that proved it, and the pointer a null
  test tests, are `anchor`ed (opaque to LLVM's IR passes, with a number of its
  own, and removed by the BPF back end before it selects instructions): no
  arithmetic hoisted above the test, no two null tests folded into a test of
  `a | b`, no two loads merged into one at a variable offset;
* a variable only ever assigned packet views keeps the address and whether it
  fits apart (`header_parts`): its null test is the range check and its uses
  the address, as C code writes them.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import llvmlite.ir as ir

from etran.abi import (
    CLOCK_MONOTONIC,
    CSUM_DIFF,
    GET_PRANDOM_U32,
    GET_SMP_PROCESSOR_ID,
    KTIME_GET_NS,
    MAP_DELETE_ELEM,
    MAP_LOOKUP_ELEM,
    MAP_POP_ELEM,
    MAP_PUSH_ELEM,
    MAP_UPDATE_ELEM,
    REDIRECT_MAP,
    RINGBUF_OUTPUT,
    TIMER_CANCEL,
    TIMER_INIT,
    TIMER_SET_CALLBACK,
    TIMER_START,
    XDP_ADJUST_HEAD,
    XDP_ADJUST_TAIL,
    XDP_LOAD_BYTES,
    XDP_MD_INGRESS_IFINDEX,
    XDP_MD_RX_QUEUE_INDEX,
)
from etran.ir import tir
from etran.ir.semantics import CHECKSUM_CHUNK, CHECKSUM_MAX_BYTES
from etran.ir.types import ArrayType, BeType, BoolType, IntType, OptionalType, PacketType, StructType, Type
from etran.lower import observe as obs
from etran.lower.context import I1, I8, I32, I64, MAX_PACKET_OFFSET, PTR, llvm_type
from etran.lower.function import FunctionBase


class ExprLowering(FunctionBase):
    """Expressions and places; `etran.lower.statements` builds the statements on it."""

    # ---------------------------------------------------------------- dispatch
    def expr(self, e: tir.Expr) -> ir.Value:
        return getattr(self, "x_" + type(e).__name__)(e)

    def x_Const(self, e: tir.Const) -> ir.Value:
        return self.const(e.type, e.value)

    def x_VarRef(self, e: tir.VarRef) -> ir.Value:
        var = e.var
        if isinstance(var.type, PacketType):
            return self.ctx
        slot = self.slots[var]
        value = self.b.load(slot, typ=llvm_type(var.type))
        if var in self.views:
            if isinstance(e.type, OptionalType):
                fits = self.b.load(self.views[var], typ=I1)
                return self.b.select(fits, value, ir.Constant(PTR, None))
            return value  # a use the checker proved non-None: the address
        if isinstance(var.type, OptionalType) and not isinstance(e.type, OptionalType):
            # A use the checker proved non-None: anchored here, after the test, so LLVM
            # cannot hoist address arithmetic on it above the test (the verifier refuses
            # arithmetic on a pointer that may be null). Inside a loop the anchor is the
            # inline-asm barrier: `llvm.bpf.passthrough` is gone when the back end's loop
            # passes run, and MachineLICM hoisted `r8 += 16` (a field's address on a
            # reference looked up before the loop) out of the loop, above the null test in
            # its body (a generated program found it:
            # tests/property/found/field_address_hoisted_out_of_a_loop_above_the_null_check.py).
            value = self.barrier(value) if self.loops else self.anchor(value)
        return value

    def x_Unary(self, e: tir.Unary) -> ir.Value:
        v = self.expr(e.operand)
        if e.op == "-":
            return self.b.sub(ir.Constant(v.type, 0), v)
        return self.b.xor(v, ir.Constant(v.type, -1))

    def x_Not(self, e: tir.Not) -> ir.Value:
        return self.b.xor(self.expr(e.operand), ir.Constant(I1, 1))

    def x_Binary(self, e: tir.Binary) -> ir.Value:
        a = self.expr(e.left)
        c = self.expr(e.right)
        return self.arith(e.op, a, c, e.type, e.right.type)

    def arith(self, op: str, a: ir.Value, c: ir.Value, t: IntType,
              count_type: Type) -> ir.Value:
        b = self.b
        if op == "+":
            return b.add(a, c)
        if op == "-":
            return b.sub(a, c)
        if op == "*":
            return b.mul(a, c)
        if op == "&":
            return b.and_(a, c)
        if op == "|":
            return b.or_(a, c)
        if op == "^":
            return b.xor(a, c)
        if op in ("//", "%"):
            return self.divide(op, a, c, t)
        if op in ("<<", ">>"):
            return self.shift_op(op, a, c, t, count_type)
        raise AssertionError(op)

    def divide(self, op: str, a: ir.Value, d: ir.Value, t: IntType) -> ir.Value:
        """x // 0 == 0 and x % 0 == x; signed results round toward -inf (Python)."""
        b = self.b
        ty = a.type
        zero = ir.Constant(ty, 0)
        one = ir.Constant(ty, 1)
        is_zero = b.icmp_unsigned("==", d, zero)
        safe = b.select(is_zero, one, d)
        if not t.signed:
            if op == "//":
                return b.select(is_zero, zero, b.udiv(a, safe))
            return b.select(is_zero, a, b.urem(a, safe))
        neg_a = b.icmp_signed("<", a, zero)
        neg_d = b.icmp_signed("<", safe, zero)
        abs_a = b.select(neg_a, b.sub(zero, a), a)
        abs_d = b.select(neg_d, b.sub(zero, safe), safe)
        uq = b.udiv(abs_a, abs_d)
        ur = b.urem(abs_a, abs_d)
        differ = b.xor(neg_a, neg_d)
        q = b.select(differ, b.sub(zero, uq), uq)        # truncated quotient
        r = b.select(neg_a, b.sub(zero, ur), ur)         # remainder with the sign of a
        adjust = b.and_(differ, b.icmp_unsigned("!=", r, zero))
        if op == "//":
            fq = b.select(adjust, b.sub(q, one), q)
            return b.select(is_zero, zero, fq)
        fr = b.select(adjust, b.add(r, safe), r)
        return b.select(is_zero, a, fr)

    def shift_op(self, op: str, a: ir.Value, count: ir.Value, t: IntType,
                 count_type: Type) -> ir.Value:
        """Counts are unsigned; a count >= width gives 0 (or the sign fill for signed >>)."""
        b = self.b
        w = t.bits
        c64 = count if count.type.width == 64 else b.zext(count, I64)
        if isinstance(count, ir.Constant) and isinstance(count.constant, int):
            n = count.constant & ((1 << count.type.width) - 1)
            if n < w:
                amount = ir.Constant(a.type, n)
                if op == "<<":
                    return b.shl(a, amount)
                return b.ashr(a, amount) if t.signed else b.lshr(a, amount)
            if op == "<<" or not t.signed:
                return ir.Constant(a.type, 0)
            return b.ashr(a, ir.Constant(a.type, w - 1))
        big = b.icmp_unsigned(">=", c64, ir.Constant(I64, w))
        masked = b.and_(c64, ir.Constant(I64, w - 1))
        amount = masked if w == 64 else b.trunc(masked, a.type)
        if op == ">>" and t.signed:
            amount = b.select(big, ir.Constant(a.type, w - 1), amount)
            return b.ashr(a, amount)
        shifted = b.shl(a, amount) if op == "<<" else b.lshr(a, amount)
        return b.select(big, ir.Constant(a.type, 0), shifted)

    def x_Compare(self, e: tir.Compare) -> ir.Value:
        a = self.expr(e.left)
        c = self.expr(e.right)
        t = e.left.type
        if isinstance(t, IntType) and t.signed and "unsigned-compare" not in self.lw.defects:
            return self.b.icmp_signed(e.op, a, c)
        return self.b.icmp_unsigned(e.op, a, c)

    def x_Logic(self, e: tir.Logic) -> ir.Value:
        left = self.expr(e.left)
        start = self.b.block
        rhs = self.new_block("logic.rhs")
        done = self.new_block("logic.end")
        if e.op == "and":
            self.b.cbranch(left, rhs, done)
        else:
            self.b.cbranch(left, done, rhs)
        self.b.position_at_end(rhs)
        right = self.expr(e.right)
        rhs_end = self.b.block
        self.b.branch(done)
        self.b.position_at_end(done)
        phi = self.b.phi(I1)
        phi.add_incoming(ir.Constant(I1, 0 if e.op == "and" else 1), start)
        phi.add_incoming(right, rhs_end)
        return phi

    def x_Cond(self, e: tir.Cond) -> ir.Value:
        test = self.expr(e.test)
        then = self.new_block("cond.then")
        other = self.new_block("cond.else")
        done = self.new_block("cond.end")
        self.b.cbranch(test, then, other)
        # Two reads of one struct, one per side, are kept apart: merged, they become one
        # read at `p + (c ? 0 : 4)`, computed as `p | 4` on an aligned stack address or
        # as a packet view moved by a variable amount, and the verifier refuses both.
        apart = _reads_memory(e.body) and _reads_memory(e.orelse)
        self.b.position_at_end(then)
        v1 = self.expr(e.body)
        if apart:
            v1 = self.anchor(v1)
        end1 = self.b.block
        self.b.branch(done)
        self.b.position_at_end(other)
        v2 = self.expr(e.orelse)
        if apart:
            v2 = self.anchor(v2)
        end2 = self.b.block
        self.b.branch(done)
        self.b.position_at_end(done)
        phi = self.b.phi(v1.type)
        phi.add_incoming(v1, end1)
        phi.add_incoming(v2, end2)
        return phi

    def x_Convert(self, e: tir.Convert) -> ir.Value:
        v = self.expr(e.operand)
        src, dst = e.operand.type, e.type
        if isinstance(dst, BoolType):
            return self.b.icmp_unsigned("!=", v, ir.Constant(v.type, 0))
        assert isinstance(dst, IntType)
        target = ir.IntType(dst.bits)
        if isinstance(src, BoolType):
            return self.b.zext(v, target)
        assert isinstance(src, IntType)
        if src.bits == dst.bits:
            return v
        if src.bits > dst.bits:
            return self.b.trunc(v, target)
        if src.signed and "no-sign-extend" not in self.lw.defects:
            return self.b.sext(v, target)
        return self.b.zext(v, target)

    def x_MinMax(self, e: tir.MinMax) -> ir.Value:
        vals = [self.expr(a) for a in e.args]
        acc = vals[0]
        op = "<" if e.op == "min" else ">"
        for v in vals[1:]:
            cmp = self.b.icmp_signed(op, v, acc) if e.type.signed else self.b.icmp_unsigned(op, v, acc)
            acc = self.b.select(cmp, v, acc)
        return acc

    # ---------------------------------------------------------------- memory
    def address(self, place: tir.Place) -> ir.Value:
        """The address of a place whose index (if any) is a checked constant."""
        base = self.expr(place.base)
        if isinstance(place, tir.FieldPlace):
            off = place.field.offset
        else:
            assert isinstance(place.index, tir.Const)
            off = place.index.value * place.elem.size  # type: ignore[union-attr]
        if off == 0:
            return base
        return self.b.gep(base, [ir.Constant(I64, off)], source_etype=I8)

    def resolve(self, place: tir.Place) -> tuple[ir.Value, ir.Value | None]:
        """Evaluate a place's expressions once: (address, None) for a place that surely
        exists, or (array base, 64-bit index) for a runtime index checked on access."""
        if not isinstance(place, tir.IndexPlace) or isinstance(place.index, tir.Const):
            return self.address(place), None
        base = self.expr(place.base)
        idx = self.expr(place.index)
        it = place.index.type
        idx64 = idx if idx.type.width == 64 else (
            self.b.sext(idx, I64) if isinstance(it, IntType) and it.signed else self.b.zext(idx, I64))
        return base, idx64

    def guarded(self, place: tir.Place,
                access: Callable[[ir.Value], ir.Value | None], default: ir.Value | None,
                resolved: tuple[ir.Value, ir.Value | None] | None = None) -> ir.Value | None:
        """Run `access(addr)` when the place exists; an index out of range reads `default`."""
        base, idx64 = resolved if resolved is not None else self.resolve(place)
        if idx64 is None:
            return access(base)
        assert isinstance(place, tir.IndexPlace)
        # Opaque to LLVM before the check: a range LLVM can prove (`2 % n` < 3) would let it
        # drop the check, and the verifier cannot prove that range itself.
        idx64 = self.barrier(idx64)
        ok = self.b.icmp_unsigned("<", idx64, ir.Constant(I64, place.length))
        start = self.b.block
        inside = self.new_block("index.ok")
        done = self.new_block("index.end")
        self.b.cbranch(ok, inside, done)
        self.b.position_at_end(inside)
        checked = self.barrier(idx64)
        offset = self.b.mul(checked, ir.Constant(I64, place.elem.size))  # type: ignore[union-attr]
        addr = self.b.gep(base, [offset], source_etype=I8)
        if place.in_packet:
            # The element is inside the checked view, but a runtime offset from a packet
            # pointer loses the verifier's range: check it against data_end again.
            addr = self.barrier(addr)
            _, end = self.packet_bounds()
            limit = self.b.gep(addr, [ir.Constant(I64, place.elem.size)], source_etype=I8)  # type: ignore[union-attr]
            fits = self.b.icmp_unsigned("<=", self.b.ptrtoint(limit, I64), self.b.ptrtoint(end, I64))
            in_view = self.new_block("index.in_packet")
            self.b.cbranch(fits, in_view, done)
            self.b.position_at_end(in_view)
        value = access(addr)
        inside_end = self.b.block
        self.b.branch(done)
        self.b.position_at_end(done)
        if value is None or default is None:
            return None
        phi = self.b.phi(value.type)
        phi.add_incoming(default, start)
        if place.in_packet:
            phi.add_incoming(default, inside)  # the data_end check failed (never, in fact)
        phi.add_incoming(value, inside_end)
        return phi

    def load_scalar(self, addr: ir.Value, storage: Type,
                    align: int = 8) -> ir.Value:
        """Load a scalar; `align` is what the address is known to be aligned to. An access
        below the scalar's natural alignment is split into bytes (the verifier refuses
        misaligned stack accesses)."""
        if isinstance(storage, BoolType):
            byte = self.b.load(addr, typ=I8, align=1)
            return self.b.icmp_unsigned("!=", byte, ir.Constant(I8, 0))
        assert isinstance(storage, (IntType, BeType))
        ty = ir.IntType(storage.bits)
        v = self.b.load(addr, typ=ty, align=min(storage.size, align))
        if isinstance(storage, BeType) and storage.bits > 8:
            v = self.bswap(v)
        return v

    def store_scalar(self, addr: ir.Value, storage: Type, v: ir.Value,
                     align: int = 8) -> None:
        if isinstance(storage, BoolType):
            self.b.store(self.b.zext(v, I8), addr, align=1)
            return
        assert isinstance(storage, (IntType, BeType))
        if isinstance(storage, BeType) and storage.bits > 8:
            v = self.bswap(v)
        self.b.store(v, addr, align=min(storage.size, align))

    def place_align(self, place: tir.Place) -> int:
        """The alignment a place's address is known to have (references are 8-aligned)."""
        base = place.base
        base_align = self.place_align(base.place) if isinstance(base, tir.AddrOf) else 8
        if isinstance(place, tir.FieldPlace):
            off = place.field.offset
        elif isinstance(place.index, tir.Const):
            off = place.index.value * place.elem.size  # type: ignore[union-attr]
        else:
            off = place.elem.size  # type: ignore[union-attr]
        return math.gcd(base_align, off) if off else base_align

    def bswap(self, v: ir.Value) -> ir.Value:
        fn = self.lw.intrinsic(f"llvm.bswap.i{v.type.width}", v.type, [v.type])
        return self.b.call(fn, [v])

    def x_Load(self, e: tir.Load) -> ir.Value:
        storage = e.place.type
        default = ir.Constant(llvm_type(e.type), 0)
        align = self.place_align(e.place)
        out = self.guarded(e.place, lambda addr: self.load_scalar(addr, storage, align), default)
        assert out is not None
        return out

    def x_AddrOf(self, e: tir.AddrOf) -> ir.Value:
        return self.address(e.place)

    def x_IsNone(self, e: tir.IsNone) -> ir.Value:
        # A variable of views: its null test is whether the view fits (`header_parts`).
        if isinstance(e.operand, tir.VarRef) and e.operand.var in self.views:
            fits = self.b.load(self.views[e.operand.var], typ=I1)
            return self.b.not_(fits) if not e.negate else fits
        # Otherwise the pointer is anchored (no address arithmetic hoisted above the test)
        # and the test's 0/1 result passes the inline-asm barrier: two null tests whose
        # results meet in one select or `and` (`x = 1 if a is None else 2` then
        # `y = x if b is None else 3`, or a function with a null test inlined twice) are
        # otherwise folded, by LLVM's IR passes or by instruction selection after the
        # anchors are gone, into one test of `a | b`: arithmetic on two pointers, which
        # the verifier refuses (tests/property/found/null_tests_*). It costs the 0/1
        # value in a register: 2 to 3 instructions a test, 3.3% of the examples' and
        # transports' instructions.
        p = self.anchor(self.expr(e.operand))
        test = self.b.icmp_unsigned("!=" if e.negate else "==", p, ir.Constant(PTR, None))
        opaque = self.barrier(self.b.zext(test, I64))
        return self.b.icmp_unsigned("!=", opaque, ir.Constant(I64, 0))

    def x_NewStruct(self, e: tir.NewStruct) -> ir.Value:
        slot = self.temp(e.struct.size, e.struct.align)
        self.zero(slot, e.struct.size)
        for f, v in e.inits:
            addr = slot if f.offset == 0 else self.b.gep(slot, [ir.Constant(I64, f.offset)], source_etype=I8)
            if isinstance(f.type, (StructType, ArrayType)):
                src_align = self.place_align(v.place) if isinstance(v, tir.AddrOf) else 8
                self.copy(addr, self.expr(v), f.type.size,
                          math.gcd(src_align, math.gcd(8, f.offset) if f.offset else 8))
            else:
                self.store_scalar(addr, f.type, self.expr(v), math.gcd(8, f.offset) if f.offset else 8)
        return slot

    def x_Call(self, e: tir.Call) -> ir.Value:
        callee = self.lw.functions[e.func]
        args: list[ir.Value] = []
        for a in e.args:
            if isinstance(a.type, PacketType):
                args += [self.ctx, self.pkt_info]
            else:
                args.append(self.expr(a))
        return self.b.call(callee, args)

    def x_Builtin(self, e: tir.Builtin) -> ir.Value:
        if e.name == "now_ns":
            if self.lw.observe:
                return self.observed_input(obs.OFF_NOW, I64)
            return self.helper(KTIME_GET_NS, I64, [])
        if e.name == "cpu_id":
            return self.b.trunc(self.helper(GET_SMP_PROCESSOR_ID, I64, []), I32)
        if e.name == "random_u32":
            if self.lw.observe:
                return self.observed_input(obs.OFF_RANDOM, I32)
            return self.b.trunc(self.helper(GET_PRANDOM_U32, I64, []), I32)
        if e.name == "pkt_len":
            data, end = self.packet_bounds()
            length = self.b.sub(self.b.ptrtoint(end, I64), self.b.ptrtoint(data, I64))
            # A plain number from here on: without the barrier LLVM folds later arithmetic
            # into the packet pointers ("32-bit pointer arithmetic prohibited").
            length = self.barrier(length)
            # ...which is below 2**32 (a frame is at most 64 KiB): LLVM can then use it as
            # a u64 without zero-extending the u32.
            self.assume(self.b.icmp_unsigned("<", length, ir.Constant(I64, 1 << 32)))
            return self.b.trunc(length, I32)
        if e.name == "rx_queue":
            return self.ctx_scalar(XDP_MD_RX_QUEUE_INDEX)
        if e.name == "ifindex":
            return self.ctx_scalar(XDP_MD_INGRESS_IFINDEX)
        raise AssertionError(e.name)

    def x_PacketHeader(self, e: tir.PacketHeader) -> ir.Value:
        """A view of `header` at `offset`, or null; the verifier sees the range check."""
        view, fits = self.header_parts(e)
        return self.b.select(fits, view, ir.Constant(PTR, None))

    def header_parts(self, e: tir.PacketHeader) -> tuple[ir.Value, ir.Value]:
        """The view's address and whether the header fits in the packet. A variable only
        ever assigned views keeps the two apart (`FunctionBase.views`): its null test is
        the range check itself and its uses are the address, as C code writes them, so
        LLVM never makes a `fits ? view : NULL` the verifier would follow in one register
        and see tested in another."""
        b = self.b
        if isinstance(e.offset, tir.Const) and e.offset.value + e.header.size <= MAX_PACKET_OFFSET:
            # A constant offset: `data + C`, no barrier and no separate offset check (the
            # verifier follows a constant offset from the packet's start without help).
            data, end = self.packet_bounds()
            view = b.gep(data, [ir.Constant(I64, e.offset.value)], source_etype=I8)
            return view, self.fits(view, end, e.header.size)
        # Opaque before the limit check: LLVM must not drop the check on a range it can
        # prove (`(7 % n) & 63`) and the verifier cannot.
        off = self.barrier(self.expr(e.offset))
        start = b.block
        in_range = self.new_block("view.offset_ok")
        done = self.new_block("view.end")
        # The verifier derives a packet range only when offset + size stays within
        # MAX_PACKET_OFF (0xFFFF): bound the offset by that, not by 0xFFFF alone.
        small = b.icmp_unsigned("<=", off, ir.Constant(I32, MAX_PACKET_OFFSET - e.header.size))
        b.cbranch(small, in_range, done)
        b.position_at_end(in_range)
        data, end = self.packet_bounds()
        off64 = self.barrier(b.zext(off, I64))
        view = self.barrier(b.gep(data, [off64], source_etype=I8))
        fits = self.fits(view, end, e.header.size)
        checked = b.block
        b.branch(done)
        b.position_at_end(done)
        view_phi = b.phi(PTR)
        view_phi.add_incoming(ir.Constant(PTR, None), start)
        view_phi.add_incoming(view, checked)
        fits_phi = b.phi(I1)
        fits_phi.add_incoming(ir.Constant(I1, 0), start)
        fits_phi.add_incoming(fits, checked)
        return view_phi, fits_phi

    def fits(self, view: ir.Value, end: ir.Value, size: int) -> ir.Value:
        """`view + size <= end`. A packet address is never null: told so, LLVM turns the
        null test of `fits ? view : NULL` into this test."""
        b = self.b
        self.assume(b.icmp_unsigned("!=", view, ir.Constant(PTR, None)))
        if "no-packet-bounds" in self.lw.defects:
            return ir.Constant(I1, 1)
        limit = b.gep(view, [ir.Constant(I64, size)], source_etype=I8)
        if self.lw.keep_bounds:
            # The view's end in a register of its own. With the packet's start kept, LLVM
            # otherwise uses one register for this end and a field at the same address (the
            # next header's first), which the verifier marks past the packet's end on the
            # failing side of the check, and refuses once the field is read there
            # (tests/property/found/view_end_shared_with_a_field_address*.py).
            limit = self.barrier(limit)
        return b.icmp_unsigned("<=", b.ptrtoint(limit, I64), b.ptrtoint(end, I64))

    def x_PacketResize(self, e: tir.PacketResize) -> ir.Value:
        delta = self.expr(e.delta)
        if e.where == "head":
            # bpf_xdp_adjust_head moves the start: a positive delta grows, so pass -delta.
            moved = self.b.sub(ir.Constant(I32, 0), delta)
            r = self.helper(XDP_ADJUST_HEAD, I64, [self.ctx, self.b.sext(moved, I64)])
            if self.lw.keep_bounds:
                self.store_bounds()
            ok = self.b.icmp_signed("==", r, ir.Constant(I64, 0))
            if isinstance(e.delta, tir.Const) and e.delta.value > 0:
                self.zero_new_head(ok, e.delta.value)
            return ok
        r = self.helper(XDP_ADJUST_TAIL, I64, [self.ctx, self.b.sext(delta, I64)])
        if self.lw.keep_bounds:
            self.store_bounds()
        return self.b.icmp_signed("==", r, ir.Constant(I64, 0))

    def x_PacketChecksum(self, e: tir.PacketChecksum) -> ir.Value:
        """A bounded loop of CHECKSUM_CHUNK-byte pieces: each is copied to a zeroed stack
        buffer (bpf_xdp_load_bytes checks the range at run time, so no packet bounds check
        and no variable packet offset reaches the verifier) and summed by bpf_csum_diff,
        which adds 32-bit words in memory order. The piece's offset is the loop counter
        times the chunk, a constant in each iteration the verifier walks; the sum comes from
        a helper, so the states leaving the loop at different pieces merge after it.
        csum_partial's little-endian sum folds to the byte swap of the big-endian one
        (ones'-complement sums commute with byte swapping), hence the swap at the end."""
        b = self.b
        off = b.zext(self.expr(e.offset), I64)
        length = b.zext(self.expr(e.length), I64)
        seed = self.expr(e.seed)
        data, end = self.packet_bounds()
        plen = b.sub(b.ptrtoint(end, I64), b.ptrtoint(data, I64))
        avail = b.sub(plen, self.barrier(self.umin(off, plen)))
        chunk = ir.Constant(I64, CHECKSUM_CHUNK)
        buf = self.temp(CHECKSUM_CHUNK + 8, 8)
        # How many bytes to sum, through a 4-byte stack slot that is not 8-aligned: the
        # verifier keeps no register state there, so `n` is the same unknown on every path
        # into the loop (no constant from a clamp, no range from a test made before), the
        # walks entering with different `n` merge at the loop head, and the loop is walked
        # once. The loop stops after CHECKSUM_MAX_BYTES whatever `n` says.
        n = b.zext(self.launder32(b.trunc(self.umin(length, avail), I32), buf,
                                  CHECKSUM_CHUNK + 4), I64)
        start = b.block
        head = self.new_block("csum.head")
        body = self.new_block("csum.body")
        done = self.new_block("csum.done")
        b.branch(head)
        b.position_at_end(head)
        pos = b.phi(I64)
        acc = b.phi(I64)
        pos.add_incoming(ir.Constant(I64, 0), start)
        acc.add_incoming(ir.Constant(I64, 0), start)
        b.cbranch(b.icmp_unsigned("<", pos, n), body, done)
        b.position_at_end(body)
        # Opaque to LLVM, or loop strength reduction keeps `n - pos` in a register of its
        # own, and the verifier no longer sees that the loop test made it at least 1.
        here = self.barrier(pos)
        take = self.umin(b.sub(n, here), chunk)
        self.zero(buf, CHECKSUM_CHUNK + 8)
        start_at = b.and_(b.add(off, here), ir.Constant(I64, 0xFFFFFFFF))
        self.helper(XDP_LOAD_BYTES, I64, [self.ctx, start_at, buf, take])
        # Whole words, the padding zeroed above: (take + 3) >> 2 << 2, kept as two shifts
        # (LLVM would make them `& -4`, whose bounds the verifier widens past the buffer).
        quads = self.barrier(b.lshr(b.add(take, ir.Constant(I64, 3)), ir.Constant(I64, 2)))
        words = b.shl(quads, ir.Constant(I64, 2))
        summed = self.helper(CSUM_DIFF, I64, [ir.Constant(PTR, None), ir.Constant(I64, 0), buf,
                                              words, b.and_(acc, ir.Constant(I64, 0xFFFFFFFF))])
        nxt = b.add(pos, chunk)
        latch = b.block
        pos.add_incoming(nxt, latch)
        acc.add_incoming(summed, latch)
        b.cbranch(b.icmp_unsigned("<", nxt, ir.Constant(I64, CHECKSUM_MAX_BYTES)), head, done)
        b.position_at_end(done)
        total = b.phi(I64)
        total.add_incoming(acc, head)
        total.add_incoming(summed, latch)
        s = self.fold16(b.and_(total, ir.Constant(I64, 0xFFFFFFFF)))
        swapped = b.or_(b.shl(b.and_(s, ir.Constant(I64, 0xFF)), ir.Constant(I64, 8)),
                        b.lshr(s, ir.Constant(I64, 8)))
        seed64 = b.zext(seed, I64)
        s = self.fold16(b.add(b.add(swapped, b.and_(seed64, ir.Constant(I64, 0xFFFF))),
                              b.lshr(seed64, ir.Constant(I64, 16))))
        return b.trunc(s, I32)

    def launder32(self, v: ir.Value, base: ir.Value, offset: int) -> ir.Value:
        """`v` stored to and loaded back from `base + offset` (4 bytes, not 8-aligned), with
        an empty inline asm that clobbers memory between them so LLVM keeps both."""
        assert offset % 8 == 4
        b = self.b
        slot = b.gep(base, [ir.Constant(I64, offset)], source_etype=I8)
        b.store(v, slot, align=4)
        fence = ir.InlineAsm(ir.FunctionType(ir.VoidType(), [PTR]), "", "r,~{memory}",
                             side_effect=True)
        b.call(fence, [slot])
        return b.load(slot, typ=I32, align=4)

    def umin(self, a: ir.Value, c: ir.Value) -> ir.Value:
        return self.b.select(self.b.icmp_unsigned("<", a, c), a, c)

    def fold16(self, s: ir.Value) -> ir.Value:
        """Two end-around-carry folds: any value below 2**33 ends at most 0xFFFF."""
        b = self.b
        mask = ir.Constant(I64, 0xFFFF)
        for _ in range(2):
            s = b.add(b.and_(s, mask), b.lshr(s, ir.Constant(I64, 16)))
        return s

    def zero_new_head(self, ok: ir.Value, n: int) -> None:
        """Headroom holds stale bytes; the language defines new head bytes as zero."""
        b = self.b
        fill = self.new_block("resize.zero")
        done = self.new_block("resize.end")
        data, end = self.packet_bounds()
        limit = b.gep(data, [ir.Constant(I64, n)], source_etype=I8)
        fits = b.icmp_unsigned("<=", b.ptrtoint(limit, I64), b.ptrtoint(end, I64))
        b.cbranch(b.and_(ok, fits), fill, done)
        b.position_at_end(fill)
        self.zero(data, n)
        b.branch(done)
        b.position_at_end(done)

    # ---------------------------------------------------------------- maps
    def key_pointer(self, key: tir.Expr) -> ir.Value:
        v = self.expr(key)
        if isinstance(key.type, StructType):
            return v
        slot = self.temp(key.type.size, key.type.size)  # type: ignore[union-attr]
        self.store_scalar(slot, key.type, v)
        return slot

    def x_MapGet(self, e: tir.MapGet) -> ir.Value:
        k = self.key_pointer(e.key)
        return self.helper(MAP_LOOKUP_ELEM, PTR, [self.map_ptr(e.map), k])

    def x_MapSet(self, e: tir.MapSet) -> ir.Value:
        k = self.key_pointer(e.key)
        v = self.expr(e.value)
        r = self.helper(MAP_UPDATE_ELEM, I64, [self.map_ptr(e.map), k, v, ir.Constant(I64, e.flags)])
        return self.b.icmp_signed("==", r, ir.Constant(I64, 0))

    def x_MapDelete(self, e: tir.MapDelete) -> ir.Value:
        k = self.key_pointer(e.key)
        r = self.helper(MAP_DELETE_ELEM, I64, [self.map_ptr(e.map), k])
        return self.b.icmp_signed("==", r, ir.Constant(I64, 0))

    def x_QueuePush(self, e: tir.QueuePush) -> ir.Value:
        v = self.expr(e.value)
        r = self.helper(MAP_PUSH_ELEM, I64, [self.map_ptr(e.map), v, ir.Constant(I64, 0)])
        return self.b.icmp_signed("==", r, ir.Constant(I64, 0))

    def x_QueuePop(self, e: tir.QueuePop) -> ir.Value:
        assert e.map.value is not None
        slot = self.temp(e.map.value.size, e.map.value.align)
        self.zero(slot, e.map.value.size)
        r = self.helper(MAP_POP_ELEM, I64, [self.map_ptr(e.map), slot])
        ok = self.b.icmp_signed("==", r, ir.Constant(I64, 0))
        return self.b.select(ok, slot, ir.Constant(PTR, None))

    def x_RingOutput(self, e: tir.RingOutput) -> ir.Value:
        v = self.expr(e.value)
        assert e.map.value is not None
        r = self.helper(RINGBUF_OUTPUT, I64, [self.map_ptr(e.map), v,
                                              ir.Constant(I64, e.map.value.size), ir.Constant(I64, 0)])
        return self.b.icmp_signed("==", r, ir.Constant(I64, 0))

    def x_Redirect(self, e: tir.Redirect) -> ir.Value:
        key = self.expr(e.key)
        assert isinstance(e.fallback, tir.Const)
        self.observe_redirect(e, key)
        r = self.helper(REDIRECT_MAP, I64, [self.map_ptr(e.map), self.b.zext(key, I64),
                                            ir.Constant(I64, e.fallback.value)])
        return self.b.trunc(r, I32)

    def x_Atomic(self, e: tir.Atomic) -> ir.Value:
        addr = self.address(e.place)
        expected = None if e.expected is None else self.expr(e.expected)
        v = self.expr(e.value)
        # seq_cst, not monotonic: LLVM 22 emits a non-fetching add for a monotonic
        # atomicrmw whose result is used, so the old value would be wrong. The three are
        # BPF_ATOMIC's fetch-add, xchg and cmpxchg (cpu v3).
        if expected is None:
            return self.b.atomic_rmw(e.op, addr, v, "seq_cst")
        pair = self.b.cmpxchg(addr, expected, v, "seq_cst", "seq_cst")
        return self.b.extract_value(pair, 0)

    def x_TimerStart(self, e: tir.TimerStart) -> ir.Value:
        timer = self.address(e.timer)
        delay = self.expr(e.delay)
        self.helper(TIMER_INIT, I64, [timer, self.map_ptr(e.map), ir.Constant(I64, CLOCK_MONOTONIC)])
        assert e.handler is not None
        cb = self.lw.timer_callback(e.handler)
        self.helper(TIMER_SET_CALLBACK, I64, [timer, cb])
        if self.lw.observe:
            self.observe_timer(e, delay)
            return ir.Constant(I1, 1)
        r = self.helper(TIMER_START, I64, [timer, delay, ir.Constant(I64, 0)])
        return self.b.icmp_signed("==", r, ir.Constant(I64, 0))

    def x_TimerCancel(self, e: tir.TimerCancel) -> ir.Value:
        timer = self.address(e.timer)
        r = self.helper(TIMER_CANCEL, I64, [timer])
        # bpf_timer_cancel returns 1 when it stopped a pending timer, 0 when none was armed.
        return self.b.icmp_signed("==", r, ir.Constant(I64, 1))



def _reads_memory(e: tir.Expr) -> bool:
    """Whether computing `e` reads a struct's field or element."""
    stack: list[object] = [e]
    while stack:
        n = stack.pop()
        if isinstance(n, tir.Load):
            return True
        stack.extend(tir.children(n))
    return False

"""Estimate the kernel verifier's `processed` count by replaying the verifier's own
exploration over the *compiled* BPF instructions: the checker's second opinion.

The source-level model (`etran.analysis.budget`) is fast and runs on every `etran check`,
but it cannot see that the verifier prunes the states of a loop body's branches when they
rejoin (states_equal with liveness and precision), so programs whose loops contain branches
are estimated at 10-100x the kernel's count, some far above the kernel's limit. When it
refuses a hook, the checker compiles the program and asks this module
(`etran.analysis.budget.check_budget`, docs/verification.md "An instruction-level replay").

It walks the instructions the kernel walks, the way it walks them (kernel/bpf/verifier.c,
6.18):

* depth first: a conditional jump whose outcome is not known pushes the *taken* branch and
  continues with the fall-through; a path ends at `exit` (or when pruned) and the most
  recently pushed branch is popped;
* every instruction visited counts one (`insn_processed`), including the visit that is pruned;
* prune points are the kernel's: conditional jumps, jump targets, the instruction after a
  call, callback-calling calls; at a prune point the state is compared with the checkpoints
  stored there whose exploration is finished (`branches == 0`); a checkpoint is stored only
  under the kernel's heuristic (>= 2 jumps and >= 8 instructions since the last one, or a
  history longer than 40 entries), is evicted after `miss > 3 * hit + 3`, and loop states
  still being explored only suppress new checkpoints (< 20 jumps and < 100 insns);
* abstract values follow the kernel's kinds (scalar with tnum + unsigned/signed 64-bit
  ranges, pointers to ctx/packet/packet end/map value (or null)/stack/map/ringbuf memory),
  packet ranges learnt from comparisons with `data_end`, null checks by id, spills and fills
  per stack byte (STACK_SPILL/MISC/ZERO, narrow spills of scalars);
* a timer callback registered by `bpf_timer_set_callback` is explored as a fresh state after
  the program's own paths, and counted in the program's total, as the kernel does: a
  `@timer` handler is verified inside every hook that starts its timer.

Precision and liveness follow the kernel instead of a static over-approximation:

* precision is dynamic: every instruction processed is recorded on the path since the last
  checkpoint (the kernel's jmp_history, with spill/fill slots and linked scalars); where the
  kernel calls mark_chain_precision (pointer += scalar, a branch decided by is_branch_taken,
  helper size arguments, constant array-map keys, a STACK_ZERO write from a register, an
  async callback's return value) the wanted registers/slots are walked back through the
  recorded instructions (backtrack_insn) and marked precise in the parent checkpoints; a
  pruned state propagates the old state's marks (propagate_precision). Imprecise scalars in
  a checkpoint match any scalar;
* liveness: registers by compute_live_registers (helper argument counts), stack slots by a
  static may-read analysis (6.18's liveness.c computes the same from the accesses it sees);
* linked scalars with constant offsets (BPF_ADD_CONST, sync_linked_regs) and the 6.18
  stable regsafe rules for them; division/modulo/variable shifts give unknown 64-bit values;
  byte swaps of constants are exact.

Where the model may know less than the kernel ("approx": multiplication, signed 32-bit
facts, 32-bit comparisons of wide values, swapped partly known values, get_smp_processor_id,
read-only data) a precise comparison never matches and an undecided branch on the value
makes it precise anyway.

`explore` returns the raw count and statistics; `Result.estimate` the count times
`MARGIN`. Anything the model does not know (BPF-to-BPF calls, kfuncs, iterators, may_goto)
raises `Unsupported`. The replay stops when its count passes `max_processed` or its clock
passes `deadline` (`Result.complete` is then false, `Result.stopped` says why).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from etran.backend.disasm import Insn, decode_one
from etran.backend.objfile import LD_IMM64, read_object
from etran.ir import tir

# The raw count times MARGIN bounds the kernel's count on every hook measured: an
# observation, not a proof, which is why `etran check` asks the replay only when the
# source-level estimate refuses a hook. The lowest replay/kernel ratios: 0.912 over 1,230
# hooks of the corpus and generated seeds 9101-9102 (an earlier generator), 0.812 over 456
# of seed 9101 today, and 0.489 among the 42 hooks the source estimate refused in 2,000
# generated programs (seed 0): a branch the model cannot decide on a value the kernel
# knows more of (a signed 32-bit bound) sends it down a path the kernel never walks, and
# the checkpoints stored there prune paths the kernel does walk (docs/verification.md).
MARGIN = 2.5
LIMIT = 1_000_000
U64 = (1 << 64) - 1
U32 = (1 << 32) - 1
S64MIN, S64MAX = -(1 << 63), (1 << 63) - 1
S32MIN32, S32MAX32 = -(1 << 31), (1 << 31) - 1
MAX_PACKET_OFF = 0xFFFF
AT_PKT_END, BEYOND_PKT_END = -1, -2


class Unsupported(Exception):
    """The program uses something the replay does not model."""


class MapShape(NamedTuple):
    """What the replay needs of a map: its kernel type (BPF_MAP_TYPE_*), entries and sizes."""

    kind: int
    max_entries: int
    value_size: int
    key_size: int


NO_MAP = MapShape(0, 0, 512, 0)


# ---------------------------------------------------------------- scalars (tnum + ranges)

def _s64(x: int) -> int:
    x &= U64
    return x - (1 << 64) if x >> 63 else x


def _s32(x: int) -> int:
    x &= U32
    return x - (1 << 32) if x >> 31 else x


@dataclass(frozen=True, slots=True)
class Reg:
    t: str                      # "none", "scalar", "ctx", "pkt", "pkt_meta", "pkt_end", "map_ptr",
                                # "map_value", "map_value_or_null", "stack", "mem", "mem_or_null",
                                # "func", "map_key"
    umin: int = 0
    umax: int = U64
    smin: int = S64MIN
    smax: int = S64MAX
    tv: int = 0
    tm: int = U64
    off: int = 0
    rng: int = 0
    id: int = 0
    mp: str = ""
    approx: bool = False
    ac: int = 0                 # scalars: BPF_ADD_CONST (64 or 32): this is (id's value) + off

    @property
    def const(self) -> bool:
        return self.tm == 0

    def var_equal(self, o: Reg) -> bool:
        return (self.umin, self.umax, self.smin, self.smax, self.tv, self.tm) == \
            (o.umin, o.umax, o.smin, o.smax, o.tv, o.tm)


NOT_INIT = Reg("none")


def _linked(r: Reg, id: int, ac: int, off: int) -> Reg:
    """`r` with another scalar id, BPF_ADD_CONST flag and offset (dataclasses.replace, without
    its cost: the replay does this on most register copies)."""
    return Reg(r.t, r.umin, r.umax, r.smin, r.smax, r.tv, r.tm, off, r.rng, id, r.mp, r.approx, ac)


def ptr(t: str, id: int = 0, mp: str = "") -> Reg:
    """A pointer with a known (zero) variable part."""
    return Reg(t, 0, 0, 0, 0, 0, 0, id=id, mp=mp)

UNKNOWN = Reg("scalar")


def known(v: int, approx: bool = False) -> Reg:
    v &= U64
    return Reg("scalar", v, v, _s64(v), _s64(v), v, 0, approx=approx)


def _sync(t: str, umin: int, umax: int, smin: int, smax: int, tv: int, tm: int, approx: bool,
          id: int = 0) -> Reg:
    """reg_bounds_sync, reduced to 64 bits: tnum <-> u64 <-> s64."""
    for _ in range(2):
        umin, umax = max(umin, tv), min(umax, tv | tm)
        if not tm >> 63:
            smin, smax = max(smin, _s64(tv)), min(smax, _s64(tv | tm))
        else:
            smin = max(smin, _s64(tv | (1 << 63)))
            smax = min(smax, _s64((tv | tm) & ~(1 << 63)))
        if umin >> 63 == umax >> 63:
            smin, smax = max(smin, _s64(umin)), min(smax, _s64(umax))
        if smin >= 0 or smax < 0:
            umin, umax = max(umin, smin & U64), min(umax, smax & U64)
        if umin > umax or smin > smax:
            break
        chi = umin ^ umax
        bits = chi.bit_length()
        rm = (1 << bits) - 1
        rv = umin & ~rm & U64
        v = tv | rv
        mu = tm & rm
        tv, tm = v & ~mu & U64, mu
    if umin > umax or smin > smax:  # infeasible branch: keep something well formed
        umin, umax, smin, smax, tv, tm = 0, U64, S64MIN, S64MAX, 0, U64
    if umin == umax:
        tv, tm, smin, smax = umin, 0, _s64(umin), _s64(umin)
    return Reg(t, umin, umax, smin, smax, tv, tm, id=id, approx=approx)


def scalar(umin: int = 0, umax: int = U64, smin: int = S64MIN, smax: int = S64MAX,
           tv: int = 0, tm: int = U64, approx: bool = False) -> Reg:
    return _sync("scalar", umin, umax, smin, smax, tv, tm, approx)


def sized_unknown(size: int, approx: bool = False) -> Reg:
    if size >= 8:
        return Reg("scalar", approx=approx)
    m = (1 << (8 * size)) - 1
    return Reg("scalar", 0, m, 0, m, 0, m, approx=approx)


def sign_unknown(size: int) -> Reg:
    b = 8 * size
    return scalar(smin=-(1 << (b - 1)), smax=(1 << (b - 1)) - 1, approx=True)


def zext32(r: Reg) -> Reg:
    """The low 32 bits of a scalar, zero-extended (coerce_reg_to_size(4))."""
    if r.const:
        return known(r.tv & U32, r.approx)
    if r.umax <= U32:
        return r if r.id == 0 else _linked(r, 0, 0, 0)
    return _sync("scalar", 0, U32, 0, U32, r.tv & U32, r.tm & U32, r.approx)


def _range_from_tnum(tv: int, tm: int, approx: bool) -> Reg:
    return _sync("scalar", 0, U64, S64MIN, S64MAX, tv, tm, approx)


def alu_scalar(op: int, a: Reg, b: Reg, w32: bool) -> Reg:
    approx = a.approx or b.approx
    if w32:
        a, b = zext32(a), zext32(b)
        bits, mask = 32, U32
    else:
        bits, mask = 64, U64
    if op in (0x30, 0x90) or (op in (0x60, 0x70, 0xC0) and not (b.const and b.tv < bits)):
        # is_safe_to_compute_dst_reg_range(): 6.18 never tracks division or modulo, not
        # even of two constants, nor a shift by anything but a constant below the width:
        # __mark_reg_unknown(), which returns before the 32-bit zero extension, so all
        # 64 bits are unknown (the running kernel's log: "w4 %= w1 ; R4=scalar()")
        return Reg("scalar")
    if a.const and b.const:
        x, y = a.tv, b.tv
        if op == 0x00:
            v = x + y
        elif op == 0x10:
            v = x - y
        elif op == 0x20:
            v = x * y
        elif op == 0x30:
            v = x // y if y else 0
        elif op == 0x90:
            v = x % y if y else x
        elif op == 0x40:
            v = x | y
        elif op == 0x50:
            v = x & y
        elif op == 0xA0:
            v = x ^ y
        elif op == 0x60:
            v = x << (y & (bits - 1))
        elif op == 0x70:
            v = x >> (y & (bits - 1))
        elif op == 0xC0:
            sx = _s32(x) if w32 else _s64(x)
            v = sx >> (y & (bits - 1))
        else:
            return _wide(sized_unknown(4 if w32 else 8, True), w32)
        return known(v & mask, approx)
    r: Reg
    if op == 0x00:  # add
        tv, tm = _tnum_add(a.tv, a.tm, b.tv, b.tm, mask)
        umin, umax = (a.umin + b.umin, a.umax + b.umax) if a.umax + b.umax <= mask else (0, mask)
        if w32:
            r = _sync("scalar", umin, umax, 0, U32, tv, tm, approx)
        else:
            smin, smax = a.smin + b.smin, a.smax + b.smax
            if smin < S64MIN or smax > S64MAX:
                smin, smax = S64MIN, S64MAX
            r = _sync("scalar", umin, umax, smin, smax, tv, tm, approx)
    elif op == 0x10:  # sub
        tv, tm = _tnum_sub(a.tv, a.tm, b.tv, b.tm, mask)
        umin, umax = (a.umin - b.umax, a.umax - b.umin) if a.umin >= b.umax else (0, mask)
        if w32:
            r = _sync("scalar", umin, umax, 0, U32, tv, tm, approx)
        else:
            smin, smax = a.smin - b.smax, a.smax - b.smin
            if smin < S64MIN or smax > S64MAX:
                smin, smax = S64MIN, S64MAX
            r = _sync("scalar", umin, umax, smin, smax, tv, tm, approx)
    elif op == 0x20:  # mul (the kernel also multiplies the tnums: it may know low bits)
        if a.umax <= U32 and b.umax <= U32 and a.umax * b.umax <= mask:
            r = scalar(a.umin * b.umin, a.umax * b.umax, approx=True)
        else:
            r = scalar(0, mask, approx=True)
    elif op == 0x50:  # and
        tv, tm = a.tv & b.tv, (a.tm | a.tv) & (b.tm | b.tv) & ~(a.tv & b.tv) & mask
        r = _sync("scalar", tv, min(a.umax, b.umax), S64MIN, S64MAX, tv, tm, approx)
    elif op == 0x40:  # or
        tv = a.tv | b.tv
        tm = (a.tm | b.tm) & ~tv & mask
        r = _sync("scalar", max(a.umin, b.umin), tv | tm, S64MIN, S64MAX, tv, tm, approx)
    elif op == 0xA0:  # xor
        tv, tm = (a.tv ^ b.tv) & ~(a.tm | b.tm) & mask, (a.tm | b.tm) & mask
        r = _sync("scalar", tv, tv | tm, S64MIN, S64MAX, tv, tm, approx)
    elif op in (0x60, 0x70, 0xC0) and b.const:
        k = b.tv
        if k >= bits:
            return _wide(scalar(0, mask, approx=True), w32)
        if op == 0x60:
            tv, tm = (a.tv << k) & mask, (a.tm << k) & mask
            if (a.umax << k) <= mask:
                r = _sync("scalar", a.umin << k, a.umax << k, S64MIN, S64MAX, tv, tm, approx)
            else:
                r = _sync("scalar", 0, mask, S64MIN, S64MAX, tv, tm, approx)
        elif op == 0x70:
            r = _sync("scalar", a.umin >> k, a.umax >> k, S64MIN, S64MAX, a.tv >> k, a.tm >> k, approx)
        else:
            if w32:
                r = scalar(0, U32, approx=True)
            else:
                sv = _s64(a.tv) >> k
                sm = _s64(a.tm) >> k if a.tm >> 63 else a.tm >> k
                r = _sync("scalar", 0, U64, a.smin >> k, a.smax >> k, sv & U64, sm & U64, approx)
    else:  # div, mod, variable shifts
        if op in (0x30, 0x90):   # 6.18 does not track division or modulo: unknown
            r = scalar(0, mask, approx=approx)
        else:
            r = scalar(0, mask, approx=True)
    return _wide(r, w32)


def _wide(r: Reg, w32: bool) -> Reg:
    if not w32:
        return r
    if r.umax <= U32:
        return r
    return _sync("scalar", 0, U32, 0, U32, r.tv & U32, r.tm & U32, r.approx)


def _tnum_add(av: int, am: int, bv: int, bm: int, mask: int) -> tuple[int, int]:
    sm = am + bm
    sv = av + bv
    sigma = sm + sv
    chi = sigma ^ sv
    mu = chi | am | bm
    return (sv & ~mu) & mask, mu & mask


def _tnum_sub(av: int, am: int, bv: int, bm: int, mask: int) -> tuple[int, int]:
    dv = (av - bv) & mask
    alpha = (dv + am) & mask
    beta = (dv - bm) & mask
    chi = alpha ^ beta
    mu = chi | am | bm
    return (dv & ~mu) & mask, mu & mask


# ---------------------------------------------------------------- branch logic

_JEQ, _JGT, _JGE, _JSET, _JNE, _JSGT, _JSGE, _JLT, _JLE, _JSLT, _JSLE = \
    0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xA0, 0xB0, 0xC0, 0xD0
_FLIP = {_JEQ: _JEQ, _JNE: _JNE, _JSET: _JSET, _JGT: _JLT, _JLT: _JGT, _JGE: _JLE, _JLE: _JGE,
         _JSGT: _JSLT, _JSLT: _JSGT, _JSGE: _JSLE, _JSLE: _JSGE}
_NEG = {_JEQ: _JNE, _JNE: _JEQ, _JGT: _JLE, _JLE: _JGT, _JGE: _JLT, _JLT: _JGE,
        _JSGT: _JSLE, _JSLE: _JSGT, _JSGE: _JSLT, _JSLT: _JSGE}


def _view32(r: Reg) -> tuple[int, int, int, int, int, int]:
    """(umin, umax, smin, smax, tv, tm) of the low 32 bits."""
    tv, tm = r.tv & U32, r.tm & U32
    if r.umax <= U32:
        umin, umax = r.umin, r.umax
    else:
        umin, umax = tv, tv | tm
    if umax <= 0x7FFFFFFF:
        smin, smax = umin, umax
    elif not (tm >> 31):
        smin, smax = _s32(tv), _s32(tv | tm)
    else:
        smin, smax = -(1 << 31), (1 << 31) - 1
    return umin, umax, smin, smax, tv, tm


def _view64(r: Reg) -> tuple[int, int, int, int, int, int]:
    return r.umin, r.umax, r.smin, r.smax, r.tv, r.tm


def branch_taken(a: Reg, b: Reg, op: int, w32: bool) -> int:
    """1 taken, 0 not taken, -1 unknown (is_scalar_branch_taken, on the model's ranges)."""
    au, AU, as_, AS, atv, atm = (_view32 if w32 else _view64)(a)
    bu, BU, bs, BS, btv, btm = (_view32 if w32 else _view64)(b)
    if op in (_JEQ, _JNE):
        eq = -1
        if atm == 0 and btm == 0:
            eq = int(atv == btv)
        elif bu > AU or au > BU or bs > AS or as_ > BS or ((atv ^ btv) & ~(atm | btm)):
            eq = 0
        if eq < 0:
            return -1
        return eq if op == _JEQ else 1 - eq
    if op == _JSET:
        if atv & btv:
            return 1
        if not ((atv | atm) & (btv | btm)):
            return 0
        return -1
    if op == _JGT:
        return 1 if au > BU else 0 if bu >= AU else -1
    if op == _JGE:
        return 1 if au >= BU else 0 if bu > AU else -1
    if op == _JLT:
        return 1 if bu > AU else 0 if au >= BU else -1
    if op == _JLE:
        return 1 if bu >= AU else 0 if au > BU else -1
    if op == _JSGT:
        return 1 if as_ > BS else 0 if bs >= AS else -1
    if op == _JSGE:
        return 1 if as_ >= BS else 0 if bs > AS else -1
    if op == _JSLT:
        return 1 if bs > AS else 0 if as_ >= BS else -1
    if op == _JSLE:
        return 1 if bs >= AS else 0 if as_ > BS else -1
    return -1


def refine(a: Reg, b: Reg, op: int, w32: bool) -> tuple[Reg, Reg]:
    """Bounds of a and b when `a op b` holds (regs_refine_cond_op, 64-bit part). For a
    32-bit comparison only values known to fit in 32 bits are refined."""
    if w32 and (a.umax > U32 or b.umax > U32):
        return a, b
    if op == _JEQ:
        n = _intersect(a, b)
        return n, n
    if op == _JNE:
        if b.const:
            a = _drop_endpoint(a, b.tv)
        if a.const:
            b = _drop_endpoint(b, a.tv)
        return a, b
    if op == _JSET:
        return a, b
    if op in (_JLT, _JLE, _JSLT, _JSLE):
        b2, a2 = refine(b, a, _FLIP[op], w32)
        return a2, b2
    if op == _JGT:    # a > b
        return _clamp(a, umin=b.umin + 1), _clamp(b, umax=a.umax - 1)
    if op == _JGE:
        return _clamp(a, umin=b.umin), _clamp(b, umax=a.umax)
    if op == _JSGT:
        return _clamp(a, smin=b.smin + 1), _clamp(b, smax=a.smax - 1)
    if op == _JSGE:
        return _clamp(a, smin=b.smin), _clamp(b, smax=a.smax)
    return a, b


def _clamp(r: Reg, umin: int | None = None, umax: int | None = None,
           smin: int | None = None, smax: int | None = None) -> Reg:
    if r.t != "scalar":
        return r
    nu = max(r.umin, umin) if umin is not None else r.umin
    nU = min(r.umax, umax) if umax is not None else r.umax
    ns = max(r.smin, smin) if smin is not None else r.smin
    nS = min(r.smax, smax) if smax is not None else r.smax
    if (nu, nU, ns, nS) == (r.umin, r.umax, r.smin, r.smax):
        return r
    if nu > nU or ns > nS:
        return r
    return _sync("scalar", nu, nU, ns, nS, r.tv, r.tm, r.approx, id=r.id)


def _intersect(a: Reg, b: Reg) -> Reg:
    if a.t != "scalar":
        return a
    if b.const:
        return replace(known(b.tv, a.approx or b.approx), id=a.id)
    r = _clamp(a, umin=b.umin, umax=b.umax, smin=b.smin, smax=b.smax)
    return r


def _drop_endpoint(r: Reg, v: int) -> Reg:
    if r.t != "scalar" or r.const:
        return r
    if r.umin == v:
        return _clamp(r, umin=v + 1)
    if r.umax == v:
        return _clamp(r, umax=v - 1)
    sv = _s64(v)
    if r.smin == sv:
        return _clamp(r, smin=sv + 1)
    if r.smax == sv:
        return _clamp(r, smax=sv - 1)
    return r


# helper id -> bitmask of the argument registers the kernel makes precise (ARG_CONST_SIZE,
# ARG_CONST_SIZE_OR_ZERO, ARG_CONST_ALLOC_SIZE_OR_ZERO); helpers missing here: all scalars
_SIZE_ARGS = {
    1: 0, 2: 0, 3: 0, 5: 0, 7: 0, 8: 0, 44: 0, 51: 0, 65: 0, 87: 0, 88: 0, 89: 0, 93: 0,
    94: 0, 132: 0, 133: 0, 169: 0, 170: 0, 171: 0, 172: 0, 195: 0,
    28: 1 << 2 | 1 << 4,    # csum_diff(from, from_size, to, to_size, seed)
    130: 1 << 3,            # ringbuf_output(map, data, size, flags)
    131: 1 << 2,            # ringbuf_reserve(map, size, flags)
    189: 1 << 4,            # xdp_load_bytes(ctx, off, buf, len)
    190: 1 << 4,            # xdp_store_bytes(ctx, off, buf, len)
}


# helper id -> number of arguments (get_call_summary(): the registers a call reads)
_HELPER_ARGS = {
    1: 2, 2: 4, 3: 2, 5: 0, 7: 0, 8: 0, 28: 5, 44: 2, 51: 3, 65: 2, 87: 3, 88: 2, 89: 2,
    93: 1, 94: 1, 130: 4, 131: 3, 132: 2, 133: 2, 169: 3, 170: 2, 171: 3, 172: 1, 189: 4,
    190: 4, 195: 3,
}


# ---------------------------------------------------------------- states

@dataclass(slots=True)
class Slot:
    types: tuple[str, ...]      # 8 bytes, index = byte offset within the slot (0 = lowest address)
    spilled: Reg                # the spilled register (STACK_SPILL bytes)


# What an instruction leaves in the jump history: the stack slot of a spill/fill
# (INSN_F_STACK_ACCESS), or at a conditional jump the linked scalars (regs, slots bitmasks).
Extra = int | tuple[int, int] | None


class Step:
    """One processed instruction on the path since the last checkpoint, linked to the one
    before it (a persistent list: a pushed branch shares its prefix)."""

    __slots__ = ("extra", "insn", "prev")

    def __init__(self, insn: int, prev: Step | None) -> None:
        self.insn = insn
        self.extra: Extra = None
        self.prev = prev


@dataclass(slots=True)
class State:
    regs: list[Reg]
    stack: dict[int, Slot]      # slot index k covers [-8(k+1), -8k)
    parent: Checkpoint | None = None
    hist: int = 0
    callsite: int = -1          # an async callback's frame: the insn that registered it
    # the instructions processed since `parent` (the kernel's first_insn_idx..insn_idx with
    # its jmp_history), newest first
    trail: Step | None = None

    def copy(self) -> State:
        return State(list(self.regs), dict(self.stack), self.parent, self.hist, self.callsite,
                     self.trail)


@dataclass(slots=True, eq=False)
class Checkpoint:
    insn: int
    regs: list[Reg]
    stack: dict[int, Slot]
    parent: Checkpoint | None
    callsite: int = -1
    branches: int = 1
    hit: int = 0
    miss: int = 0
    evicted: bool = False
    trail: Step | None = None   # the path from `parent` to this checkpoint
    preg: int = 0               # registers marked precise (bit r)
    pslot: int = 0              # spilled scalars marked precise (bit k: slot k)


@dataclass
class Result:
    processed: int          # instructions replayed (where it stopped, when not complete)
    total_states: int
    peak_states: int
    complete: bool          # explored every path within `max_processed` and `deadline`
    paths: int
    stopped: str = ""       # why not complete: "limit" or "time"

    @property
    def estimate(self) -> int:
        return math.ceil(self.processed * MARGIN) if self.complete else LIMIT + 1


# ---------------------------------------------------------------- program layout and static analyses

@dataclass
class Layout:
    insns: dict[int, Insn]              # slot index -> decoded instruction
    ref: dict[int, tuple[str, str]]     # slot index -> ("map"|"data"|"func", name or target)
    func_start: dict[str, int]
    size: int
    rodata: set[str] = field(default_factory=set)


def layout(elf: bytes, program_name: str) -> Layout:
    obj = read_object(elf)
    prog = obj.program(program_name)
    fns = [prog, *prog.subprograms]
    starts: dict[str, int] = {}
    idx = 0
    for fn in fns:
        starts[fn.name] = idx
        idx += fn.slot_count
    insns: dict[int, Insn] = {}
    refs: dict[int, tuple[str, str]] = {}
    for fn in fns:
        base = starts[fn.name]
        relocs = obj.relocations.get(fn.section, {})
        pos = 0
        for raw in fn.instructions:
            i = base + pos // 8
            insn = decode_one(raw, obj.little_endian)
            insns[i] = insn
            callee = fn.calls.get(pos)
            sym = relocs.get(fn.offset + pos)
            if callee is not None:
                refs[i] = ("func", callee)
            elif sym is not None:
                if sym in obj.maps:
                    refs[i] = ("map", sym)
                elif sym in obj.externs:
                    raise Unsupported(f"externs ({sym})")
                else:
                    refs[i] = ("data", sym)
            pos += len(raw)
    return Layout(insns, refs, starts, idx)


def _succs(lay: Layout, i: int) -> list[int]:
    ins = lay.insns[i]
    code = ins.code
    cls = code & 7
    nxt = i + (2 if code == LD_IMM64 else 1)
    if cls in (5, 6):
        op = code & 0xF0
        if op == 0x90:
            return []
        if op == 0x80:
            return [nxt]
        if op == 0x00:
            return [nxt + (ins.imm if cls == 6 else ins.off)]
        return [nxt, nxt + ins.off]
    return [nxt]


def static_analyses(lay: Layout, maps: dict[str, MapShape] | None = None
                    ) -> tuple[dict[int, int], dict[int, int], set[int], set[int]]:
    """Register liveness (bitmask before each insn), stack slot liveness (bit k: slot k may be
    read before it is overwritten), prune points, jump points."""
    order = sorted(lay.insns)
    use: dict[int, int] = {}
    defs: dict[int, int] = {}
    sink: dict[int, int] = {}
    prune: set[int] = set()
    jmp: set[int] = set()
    for i in order:
        ins = lay.insns[i]
        code, cls = ins.code, ins.code & 7
        d, s = ins.dst, ins.src
        u = df = sk = 0
        nxt = i + (2 if code == LD_IMM64 else 1)
        if cls in (4, 7):
            op = code & 0xF0
            x = code & 8
            if op == 0xB0:
                df = 1 << d
                u = (1 << s) if x else 0
            elif op in (0x80, 0xD0):
                u, df = 1 << d, 1 << d
            else:
                u = (1 << d) | ((1 << s) if x else 0)
                df = 1 << d
                if cls == 7 and op in (0x00, 0x10):
                    sk = u  # pointer arithmetic: the scalar operand becomes precise
        elif cls == 0:
            df = 1 << d
            if (code == LD_IMM64 and ins.src == 4) or lay.ref.get(i, ("",))[0] == "func":
                prune.add(i)
                prune.add(nxt)
                jmp.add(nxt)
        elif cls == 1:
            u, df = 1 << s, 1 << d
        elif cls == 2:
            u = 1 << d
        elif cls == 3:
            u = (1 << d) | (1 << s)
            sk = 1 << s   # spilled values: every stack slot counts as precise
            if code & 0xE0 == 0xC0:
                if ins.imm & 1:
                    df = 1 << s
                if ins.imm == 0xF1:
                    u |= 1
                    df = 1
        else:
            op = code & 0xF0
            if op == 0x80:
                if ins.src == 1:
                    raise Unsupported("BPF-to-BPF calls")
                if ins.src != 0:
                    raise Unsupported("kfunc calls")
                # compute_live_registers(): a helper reads its prototype's arguments
                u = ((1 << (_HELPER_ARGS.get(ins.imm, 5) + 1)) - 1) & ~1
                sk = u
                df = 0b111111
                prune.add(nxt)
                jmp.add(nxt)
                if ins.imm == 170:  # timer_set_callback: async callback calling insn
                    prune.add(i)
            elif op == 0x90:
                u = 1
                sk = 1
            elif op == 0x00:
                t = nxt + (ins.imm if cls == 6 else ins.off)
                prune.add(t)
                jmp.add(t)
            elif op == 0xE0:
                raise Unsupported("may_goto")
            else:
                u = (1 << d) | ((1 << s) if code & 8 else 0)
                sk = u
                prune.add(i)
                prune.add(nxt + ins.off)
                jmp.add(nxt + ins.off)
        use[i], defs[i], sink[i] = u & 0x3FF, df, sk & 0x3FF
    succ = {i: _succs(lay, i) for i in order}
    live = dict.fromkeys(order, 0)
    changed = True
    while changed:
        changed = False
        for i in reversed(order):
            out_l = 0
            for t in succ[i]:
                out_l |= live.get(t, 0)
            nl = use[i] | (out_l & ~defs[i])
            if nl != live[i]:
                live[i] = nl
                changed = True
    slive = _stack_live(lay, order, succ, maps or {})
    return live, slive, prune, jmp


TOP = "T"
# The frame-pointer offsets a register may hold (None: it may hold something else), or TOP.
Offsets = frozenset[int | None] | str
Frame = tuple[Offsets, ...]
NO_FP: frozenset[int | None] = frozenset([None])
SLOTS = 0xFFFFFFFFFFFFFFFF << 16     # bits 16..79: stack slots 0..63 (slot k = [-8(k+1), -8k))


def _fp_offsets(lay: Layout, order: list[int], succ: dict[int, list[int]]) -> dict[int, Frame]:
    """Forward may-analysis: before each insn, for each register, the set of frame-pointer
    offsets it may hold (None in the set: it may hold something else), or TOP. A load of 8
    bytes from the stack may give a spilled stack pointer (TOP) only if some store may
    write one."""
    before = _fp_offsets_pass(lay, order, succ, False)
    for i, st in before.items():
        ins = lay.insns[i]
        if ins.code & 7 == 3 and ins.code & 0xE0 != 0xC0 and st[ins.src] != NO_FP:
            return _fp_offsets_pass(lay, order, succ, True)
    return before


def _fp_offsets_pass(lay: Layout, order: list[int], succ: dict[int, list[int]],
                     fp_spills: bool) -> dict[int, Frame]:
    def join(a: Frame, b: Frame) -> Frame:
        out: list[Offsets] = []
        for x, y in zip(a, b):
            if isinstance(x, str) or isinstance(y, str):
                out.append(TOP)
            else:
                u = x | y
                out.append(TOP if len(u) > 6 else u)
        return tuple(out)
    NONE = NO_FP
    entry: Frame = tuple([NONE] * 10 + [frozenset([0])])
    before: dict[int, Frame] = {order[0]: entry} if order else {}
    for start in lay.func_start.values():   # callbacks start with nothing on the stack
        before.setdefault(start, entry)
    work = list(before)
    while work:
        i = work.pop()
        st = list(before[i])
        ins = lay.insns[i]
        code, cls = ins.code, ins.code & 7
        d, sr = ins.dst, ins.src
        if cls in (4, 7):
            op = code & 0xF0
            if op == 0xB0 and code & 8 and cls == 7 and not ins.off:
                st[d] = st[sr]
            elif cls == 7 and op in (0x00, 0x10) and not isinstance(cur := st[d], str) \
                    and cur != NONE:
                if code & 8:
                    st[d] = TOP
                else:
                    k = ins.imm if op == 0x00 else -ins.imm
                    st[d] = frozenset(None if x is None else x + k for x in cur)
            else:
                st[d] = NONE
        elif cls == 0:
            st[d] = NONE
        elif cls == 1:
            st[d] = TOP if fp_spills and st[sr] != NONE and code & 0x18 == 0x18 else NONE
        elif cls == 3 and code & 0xE0 == 0xC0:
            if ins.imm & 1:
                st[sr] = NONE
            if ins.imm == 0xF1:
                st[0] = NONE
        elif cls in (5, 6) and code & 0xF0 == 0x80:
            for r in range(6):
                st[r] = NONE
        new = tuple(st)
        for t in succ[i]:
            if t not in lay.insns:
                continue
            old = before.get(t)
            merged = new if old is None else join(old, new)
            if merged != old:
                before[t] = merged
                work.append(t)
    return before


def _slot_bits(v: Offsets, off: int, size: int) -> tuple[int, bool]:
    """Stack-slot bits an access [base+off, +size) may touch, and whether it surely hits
    exactly one known slot (the base is certainly the frame pointer plus a constant)."""
    if isinstance(v, str):
        return SLOTS, False
    bits = 0
    sure = None not in v and len(v) == 1
    for c in v:
        if c is None:
            continue
        a = c + off
        for o in (a, a + size - 1):
            if -512 <= o < 0:
                bits |= 1 << (16 + (-o - 1) // 8)
            else:
                return SLOTS, False
    return bits, sure


# helper id -> {argument register: how many bytes of memory it reads}: "key" / "value" the
# map's (in r1) key or value size; an argument not listed reads nothing; a helper missing
# here: every argument that may point to the stack reads up to the frame
_HELPER_READS: dict[int, dict[int, str]] = {
    1: {2: "key"}, 2: {2: "key", 3: "value"}, 3: {2: "key"}, 195: {2: "key"},
    87: {2: "value"}, 88: {}, 89: {}, 5: {}, 7: {}, 8: {}, 44: {}, 51: {}, 65: {}, 93: {},
    94: {}, 131: {}, 132: {}, 133: {}, 169: {}, 170: {}, 171: {}, 172: {}, 189: {},
}


def _map_regs(lay: Layout, order: list[int], succ: dict[int, list[int]]
              ) -> dict[int, tuple[str | None, ...]]:
    """Forward analysis: before each insn, the map each register surely holds (None: none;
    "?": one of several)."""
    TOPM = "?"
    before: dict[int, tuple[str | None, ...]] = {}
    for start in [order[0], *lay.func_start.values()] if order else []:
        before.setdefault(start, (None,) * 11)
    work = list(before)
    while work:
        i = work.pop()
        st = list(before[i])
        ins = lay.insns[i]
        code, cls, d = ins.code, ins.code & 7, ins.dst
        if cls == 0:
            ref = lay.ref.get(i)
            st[d] = ref[1] if ref is not None and ref[0] == "map" else None
        elif cls in (4, 7) and code & 0xF0 == 0xB0 and code & 8 and cls == 7 and not ins.off:
            st[d] = st[ins.src]
        elif cls in (4, 7) or cls == 1:
            st[d] = None
        elif cls == 3 and code & 0xE0 == 0xC0:
            st[ins.src] = None
            st[0] = None
        elif cls in (5, 6) and code & 0xF0 == 0x80:
            for r in range(6):
                st[r] = None
        new = tuple(st)
        for t in succ[i]:
            if t not in lay.insns:
                continue
            old = before.get(t)
            merged = new if old is None else tuple(a if a == b else TOPM for a, b in zip(old, new))
            if merged != old:
                before[t] = merged
                work.append(t)
    return before


def _stack_live(lay: Layout, order: list[int], succ: dict[int, list[int]],
                maps: dict[str, MapShape]) -> dict[int, int]:
    """Stack liveness (6.18 kernel/bpf/liveness.c, made static): before each insn, the slots
    (bit k = slot k) some path from it may read before writing all 8 bytes. Reads: loads
    through a pointer that may point to the stack, atomics, helper arguments that may point
    to the stack (every slot from the pointer up to the frame). Kills: 8-byte aligned writes
    at one known offset. A superset of what the kernel finds live, so never fewer slots are
    compared than in the kernel."""
    fp = _fp_offsets(lay, order, succ)
    mregs = _map_regs(lay, order, succ)
    ALL = (1 << 64) - 1
    NONE = NO_FP
    use: dict[int, int] = {}
    kill: dict[int, int] = {}
    for i in order:
        u = kl = 0
        f = fp.get(i)
        if f is not None:
            ins = lay.insns[i]
            code, cls, d, sr = ins.code, ins.code & 7, ins.dst, ins.src
            if cls in (1, 2, 3):
                size = {0: 4, 8: 2, 16: 1, 24: 8}[code & 0x18]
                base = f[sr] if cls == 1 else f[d]
                if base != NONE:
                    bits, sure = _slot_bits(base, ins.off, size)
                    bits >>= 16
                    if cls == 1 or code & 0xE0 == 0xC0:
                        u = bits
                    elif sure and size == 8 and not isinstance(base, str) and \
                            all(c is not None and (c + ins.off) % 8 == 0 for c in base):
                        kl = bits
            elif cls in (5, 6) and code & 0xF0 == 0x80:
                reads = _HELPER_READS.get(ins.imm)
                m = maps.get((mregs.get(i) or (None,) * 11)[1] or "")
                for r in range(1, 6):
                    v = f[r]
                    if v == NONE:
                        continue
                    size = None
                    if reads is not None:
                        what = reads.get(r)
                        if what == "key" and m is not None:
                            size = m.key_size
                        elif what == "value" and m is not None:
                            size = m.value_size
                        elif what is None:
                            continue
                    if isinstance(v, str):
                        u = ALL
                        break
                    if size is not None:
                        for c in v:
                            if c is None:
                                continue
                            if c + size > 0 or c < -512:
                                u = ALL
                                continue
                            for o in range(c, c + size):
                                u |= 1 << ((-o - 1) // 8)
                        continue
                    for c in v:
                        if c is None:
                            continue
                        if c >= 0 or c < -512:
                            u = ALL
                        else:
                            u |= (1 << ((-c - 1) // 8 + 1)) - 1
        use[i], kill[i] = u, kl
    live = dict.fromkeys(order, 0)
    changed = True
    while changed:
        changed = False
        for i in reversed(order):
            out_l = 0
            for t in succ[i]:
                out_l |= live.get(t, 0)
            nl = use[i] | (out_l & ~kill[i])
            if nl != live[i]:
                live[i] = nl
                changed = True
    return live


# ---------------------------------------------------------------- the explorer

def _backtrack_regs(ins: Insn) -> int:
    """The registers that make `Explorer.backtrack` change what it is looking for at `ins`
    when the instruction recorded nothing else (no spill, fill or linked scalars)."""
    code, cls = ins.code, ins.code & 7
    if cls in (0, 1, 2, 3, 4, 7):
        return 1 << ins.dst
    op = code & 0xF0
    if op == 0x80:
        return 0b111111
    if op in (0x00, 0x90) or not code & 8:
        return 0
    return (1 << ins.dst) | (1 << ins.src)


class Explorer:
    def __init__(self, lay: Layout, max_processed: int = LIMIT,
                 maps: dict[str, MapShape] | None = None, deadline: float | None = None) -> None:
        self.lay = lay
        self.maps = maps or {}
        self.live, self.slive, self.prune, self.jmp = static_analyses(lay, self.maps)
        self.bt_regs = {i: _backtrack_regs(ins) for i, ins in lay.insns.items()}
        self.extra: Extra = None
        self.max_processed = max_processed
        self.deadline = deadline
        self.stopped = ""
        self.explored: dict[int, list[Checkpoint]] = {}
        self.insn_processed = 0
        self.jmps_processed = 0
        self.prev_insn = 0
        self.prev_jmps = 0
        self.id_gen = 0
        self.total_states = 0
        self.peak_states = 0
        self.cur_states = 0
        self.paths = 0
        self.work: list[tuple[int, State]] = []
        self.tmp_id = 0

    def new_id(self) -> int:
        self.id_gen += 1
        return self.id_gen

    # -- entry
    def run(self, entry: int = 0) -> Result:
        regs = [NOT_INIT] * 11
        regs[1] = ptr("ctx")
        regs[10] = ptr("stack")
        self.work.append((entry, State(regs, {})))
        complete = True
        while self.work:
            idx, st = self.work.pop()
            if not self.path(idx, st):
                complete = False
                break
        return Result(self.insn_processed, self.total_states, self.peak_states, complete, self.paths,
                      self.stopped)

    def path(self, idx: int, st: State) -> bool:
        lay = self.lay
        while True:
            self.insn_processed += 1
            if self.insn_processed > self.max_processed:
                self.stopped = "limit"
                return False
            if not self.insn_processed & 0xFFF and self.deadline is not None and \
                    time.monotonic() > self.deadline:
                self.stopped = "time"
                return False
            if idx in self.prune and self.visited(idx, st):
                self.end(st)
                return True
            if idx in self.jmp:
                st.hist += 1
            ins = lay.insns.get(idx)
            if ins is None:
                raise Unsupported(f"a jump out of the program (to {idx})")
            entry = Step(idx, st.trail)
            st.trail = entry
            self.extra = None
            nxt = self.step(idx, ins, st)
            entry.extra = self.extra
            if nxt is None:
                self.end(st)
                return True
            idx = nxt

    def end(self, st: State) -> None:
        self.paths += 1
        c = st.parent
        while c is not None:
            c.branches -= 1
            if c.branches:
                break
            c = c.parent

    def push(self, idx: int, st: State) -> None:
        if st.parent is not None:
            st.parent.branches += 1
        self.work.append((idx, st))

    # -- precision (mark_chain_precision / backtrack_insn / propagate_precision)
    def mark_precise(self, st: State, regs: int, slots: int, skip_first: bool) -> None:
        """__mark_chain_precision(): walk the path back from the current instruction (skipped
        when `skip_first`: the request is about the values before it) through the states'
        recorded instructions, moving the wanted registers/slots to their sources, and mark
        what is still wanted at each parent checkpoint precise there. The current state is
        not marked (the kernel does not mark it either)."""
        regs &= 0x3FF
        if not regs and not slots:
            return
        node = st.trail
        if skip_first and node is not None:
            node = node.prev
        parent = st.parent
        insns = self.lay.insns
        bt_regs = self.bt_regs
        while True:
            while node is not None:
                if node.extra is None and not regs & bt_regs[node.insn]:
                    node = node.prev    # backtrack() would change nothing
                    continue
                r = self.backtrack(insns[node.insn], node.extra, regs, slots)
                node = node.prev
                if r is None:       # -ENOTSUPP: mark_all_scalars_precise from the parent on
                    self.mark_all_precise(parent)
                    return
                regs, slots = r
                if not regs and not slots:
                    return
            if parent is None:
                return
            for q in range(10):
                if regs >> q & 1:
                    if parent.regs[q].t != "scalar" or parent.preg >> q & 1:
                        regs &= ~(1 << q)
                    else:
                        parent.preg |= 1 << q
            if slots:
                for k in range(64):
                    if slots >> k & 1:
                        sl = parent.stack.get(k)
                        if sl is None or sl.types[0] != "s" or sl.spilled.t != "scalar" or \
                                parent.pslot >> k & 1:
                            slots &= ~(1 << k)
                        else:
                            parent.pslot |= 1 << k
            if not regs and not slots:
                return
            node = parent.trail
            parent = parent.parent

    @staticmethod
    def mark_all_precise(c: Checkpoint | None) -> None:
        while c is not None:
            for q in range(10):
                if c.regs[q].t == "scalar":
                    c.preg |= 1 << q
            for k, sl in c.stack.items():
                if sl.types[0] == "s" and sl.spilled.t == "scalar":
                    c.pslot |= 1 << k
            c = c.parent

    @staticmethod
    def backtrack(ins: Insn, extra: Extra, regs: int, slots: int) -> tuple[int, int] | None:
        """backtrack_insn() (with bt_sync_linked_regs() around it at conditional jumps)."""
        code = ins.code
        cls = code & 7
        d, sr = ins.dst, ins.src
        if cls in (4, 7):
            if not regs >> d & 1:
                return regs, slots
            op = code & 0xF0
            if op in (0x80, 0xD0):
                return regs, slots
            if op == 0xB0:
                regs &= ~(1 << d)
                if code & 8 and sr != 10:
                    regs |= 1 << sr
                return regs, slots
            if code & 8 and sr != 10:
                regs |= 1 << sr
            return regs, slots
        if cls == 0:                        # ld_imm64
            return regs & ~(1 << d), slots
        if cls == 1:
            if not regs >> d & 1:
                return regs, slots
            regs &= ~(1 << d)
            if isinstance(extra, int):      # a fill: the slot's spilled scalar
                slots |= 1 << extra
            return regs, slots
        if cls in (2, 3):
            if regs >> d & 1:
                return None
            if code & 0xE0 == 0xC0 and cls == 3:
                # atomics: a fetch writes sr (or r0): keep what is wanted (over-marks)
                return regs, slots
            if not isinstance(extra, int) or not slots >> extra & 1:
                return regs, slots
            slots &= ~(1 << extra)
            if cls == 3:
                regs |= 1 << sr
            return regs, slots
        op = code & 0xF0
        if op == 0x80:                      # helper call: r0 is its result
            return regs & ~1 & ~0b111110, slots
        if op in (0x00, 0x90):
            return regs, slots
        if isinstance(extra, tuple):
            lr, ls = extra
            if regs & lr or slots & ls:
                regs |= lr
                slots |= ls
        if code & 8 and (regs >> d & 1 or regs >> sr & 1):
            regs |= (1 << d) | (1 << sr)
        if isinstance(extra, tuple):
            lr, ls = extra
            if regs & lr or slots & ls:
                regs |= lr
                slots |= ls
        return regs, slots

    def propagate_precision(self, old: Checkpoint, cur: State, idx: int) -> None:
        """A pruned state: what the explored state needed precise, the current path needs
        precise too (on the live part of the explored state, as cleaned by the kernel)."""
        regs = old.preg & self.live[idx]
        slots = old.pslot & self.slive[idx]
        regs = sum(1 << q for q in range(10) if regs >> q & 1 and old.regs[q].t == "scalar")
        if regs or slots:
            self.mark_precise(cur, regs, slots, False)

    # -- is_state_visited
    def visited(self, idx: int, cur: State) -> bool:
        force = cur.hist > 40
        add = force or (self.jmps_processed - self.prev_jmps >= 2 and
                        self.insn_processed - self.prev_insn >= 8)
        lst = self.explored.get(idx)
        if lst:
            keep = []
            pruned = False
            for c in lst:
                if pruned:
                    keep.append(c)
                    continue
                if c.branches:
                    if not force and self.jmps_processed - self.prev_jmps < 20 and \
                            self.insn_processed - self.prev_insn < 100:
                        add = False
                elif self.states_equal(c, cur, idx):
                    c.hit += 1
                    pruned = True
                    keep.append(c)
                    self.propagate_precision(c, cur, idx)
                    continue
                if add:
                    c.miss += 1
                if c.miss > c.hit * 3 + 3:
                    c.evicted = True
                    self.cur_states -= 1
                    continue
                keep.append(c)
            self.explored[idx] = keep
            if pruned:
                return True
        if not add:
            return False
        c = Checkpoint(idx, list(cur.regs), dict(cur.stack), cur.parent, cur.callsite,
                       trail=cur.trail)
        self.explored.setdefault(idx, []).insert(0, c)
        cur.parent = c
        cur.trail = None
        cur.hist = 0
        self.prev_insn = self.insn_processed
        self.prev_jmps = self.jmps_processed
        self.total_states += 1
        self.cur_states += 1
        self.peak_states = max(self.peak_states, self.cur_states)
        return False

    def states_equal(self, old: Checkpoint, cur: State, idx: int) -> bool:
        if old.callsite != cur.callsite:
            return False
        live = self.live[idx]
        preg = old.preg
        idmap: dict[int, int] = {}
        rev: dict[int, int] = {}
        for r in range(10):
            if not live >> r & 1:
                continue
            if not self.regsafe(old.regs[r], cur.regs[r], bool(preg >> r & 1), idmap, rev):
                return False
        return self.stacksafe(old, cur.stack, idmap, rev, self.slive[idx])

    @staticmethod
    def check_ids(a: int, b: int, idmap: dict[int, int], rev: dict[int, int]) -> bool:
        if not a and not b:
            return True
        if not a or not b:
            return False
        if a in idmap:
            return idmap[a] == b
        if b in rev:
            return False
        idmap[a] = b
        rev[b] = a
        return True

    def check_scalar_ids(self, a: int, b: int, idmap: dict[int, int], rev: dict[int, int]) -> bool:
        if not a:       # the old register is independent: any link in cur only constrains
            return True
        self.tmp_id -= 1
        b = b or self.tmp_id
        return self.check_ids(a, b, idmap, rev)

    def regsafe(self, o: Reg, c: Reg, precise: bool, idmap: dict[int, int], rev: dict[int, int]) -> bool:
        if o.t == "none":
            return True
        if o is c:
            # one value shared since a common path: the kernel's copies are equal too, what
            # the model does not know of it included (approx); only the ids remain to map
            if o.t == "scalar":
                return not precise or self.check_scalar_ids(o.id + (o.ac << 40),
                                                            c.id + (c.ac << 40), idmap, rev)
            return not o.id or self.check_ids(o.id, c.id, idmap, rev)
        if o.t != c.t:
            return False
        if o.t == "scalar":
            if not precise:
                return True
            # 6.18 stable ("Relax scalar id equivalence", "Enforce regsafe base id consistency
            # for BPF_ADD_CONST scalars"): an old register without id accepts any link; with
            # one, the BPF_ADD_CONST flags must agree, and the offsets when set
            if (o.id and o.ac != c.ac) or (o.ac and o.off != c.off):
                return False
            if o.const and c.const:
                return o.tv == c.tv and self.check_scalar_ids(o.id + (o.ac << 40),
                                                             c.id + (c.ac << 40), idmap, rev)
            if o.approx or c.approx:
                return False
            if not (o.umin <= c.umin and c.umax <= o.umax and o.smin <= c.smin and c.smax <= o.smax):
                return False
            if (c.tv & ~o.tm) != o.tv or (c.tm & ~o.tm):
                return False
            return self.check_scalar_ids(o.id + (o.ac << 40), c.id + (c.ac << 40), idmap, rev)
        if o.t in ("pkt", "pkt_meta"):
            if (o.rng < 0 or c.rng < 0) and o.rng != c.rng:
                return False
            if o.rng > c.rng or o.off != c.off:
                return False
            if not self.check_ids(o.id, c.id, idmap, rev):
                return False
            return self._var_within(o, c)
        if o.t in ("map_value", "map_value_or_null", "mem", "mem_or_null"):
            if o.mp != c.mp or o.off != c.off:
                return False
            if (o.t.endswith("_or_null") or o.id or c.id) and not self.check_ids(o.id, c.id, idmap, rev):
                return False
            return self._var_within(o, c)
        # stack, ctx, pkt_end, map_ptr, func, map_key: exact
        return o == c or (o.off == c.off and o.mp == c.mp and o.var_equal(c) and
                          self.check_ids(o.id, c.id, idmap, rev))

    @staticmethod
    def _var_within(o: Reg, c: Reg) -> bool:
        if o.approx or c.approx:
            return False
        return (o.umin <= c.umin and c.umax <= o.umax and o.smin <= c.smin and c.smax <= o.smax
                and (c.tv & ~o.tm) == o.tv and not (c.tm & ~o.tm))

    def stacksafe(self, old_cp: Checkpoint, cur: dict[int, Slot], idmap: dict[int, int], rev: dict[int, int],
                  slive: int) -> bool:
        """stacksafe() on the slots live at the checkpoint (clean_func_state() makes the
        others STACK_INVALID in the explored state)."""
        pslot = old_cp.pslot
        for k, os_ in old_cp.stack.items():
            if not slive >> k & 1:
                continue
            ot = os_.types
            if all(t in "im" for t in ot):      # INVALID, or MISC with allow_uninit_stack
                continue
            cs = cur.get(k)
            if cs is None:
                cs = Slot(("i",) * 8, NOT_INIT)
            ct = cs.types
            oreg = self._scalar_for_stack(os_)
            creg = self._scalar_for_stack(cs)
            precise = bool(pslot >> k & 1)
            if oreg is not None and creg is not None:
                if not self.regsafe(oreg, creg, precise, idmap, rev):
                    return False
                continue
            for b in range(8):
                a, c = ot[b], ct[b]
                if a in "im":    # INVALID / MISC (allow_uninit_stack): anything goes
                    continue
                if a != c:
                    return False
            if ot[0] == "s" and not self.regsafe(os_.spilled, cs.spilled, precise, idmap, rev):
                return False
        return True

    @staticmethod
    def _scalar_for_stack(s: Slot) -> Reg | None:
        if all(t == "s" for t in s.types) and s.spilled.t == "scalar":
            return s.spilled
        if all(t in "mi" for t in s.types):
            return UNKNOWN
        return None

    # -- one instruction; returns the next index or None when the path ends
    def step(self, i: int, ins: Insn, st: State) -> int | None:
        code = ins.code
        cls = code & 7
        regs = st.regs
        d = ins.dst
        if cls in (4, 7):
            self.alu(ins, st, cls == 4)
            return i + 1
        if cls == 0:
            if code != LD_IMM64:
                raise Unsupported("legacy packet access")
            ref = self.lay.ref.get(i)
            if ref is None:
                if ins.src in (0,):
                    regs[d] = known(ins.imm64 or 0)
                else:
                    raise Unsupported(f"ld_imm64 with src {ins.src}")
            elif ref[0] == "map":
                regs[d] = Reg("map_ptr", 0, 0, 0, 0, 0, 0, mp=ref[1])
            elif ref[0] == "data":
                regs[d] = Reg("map_value", 0, 0, 0, 0, 0, 0, off=ins.imm, mp=ref[1])
            else:
                regs[d] = Reg("func", 0, 0, 0, 0, 0, 0, mp=ref[1])
            return i + 2
        if cls == 1:
            self.load(ins, st)
            return i + 1
        if cls in (2, 3):
            self.store(ins, st)
            return i + 1
        # jumps
        self.jmps_processed += 1
        op = code & 0xF0
        if op == 0x00:
            return i + 1 + (ins.imm if cls == 6 else ins.off)
        if op == 0x90:
            if st.callsite != -1 and st.regs[0].t == "scalar":
                # an async callback's return value is checked against [0, 0]: precise
                self.mark_precise(st, 1, 0, True)
            return None
        if op == 0x80:
            self.call(i, ins, st)
            return i + 1
        return self.cond(i, ins, st)

    def alu(self, ins: Insn, st: State, w32: bool) -> None:
        regs = st.regs
        code = ins.code
        op = code & 0xF0
        d = ins.dst
        x = code & 8
        a = regs[d]
        b = regs[ins.src] if x else known(ins.imm if not w32 else ins.imm & U32)
        if op == 0xB0:  # mov
            if x and ins.off:
                regs[d] = sign_unknown(ins.off // 8) if not w32 else scalar(0, U32, approx=True)
                if b.const:
                    v = b.tv & ((1 << ins.off) - 1)
                    sv = v - (1 << ins.off) if v >> (ins.off - 1) else v
                    regs[d] = known(sv & (U32 if w32 else U64))
                return
            if not x:
                regs[d] = known(ins.imm & U32) if w32 else known(ins.imm)
                return
            if b.t != "scalar":
                regs[d] = b if not w32 else scalar(0, U32, approx=True)
                return
            if w32:
                if b.umax <= U32:
                    b = self.id_before_mov(b)
                    regs[ins.src] = b
                    regs[d] = b
                else:
                    regs[d] = zext32(b)
                return
            b = self.id_before_mov(b)
            regs[ins.src] = b
            regs[d] = b
            return
        if op == 0x80:  # neg
            if a.t == "scalar" and a.const:
                regs[d] = known((-a.tv) & (U32 if w32 else U64), a.approx)
            else:
                regs[d] = scalar(0, U32 if w32 else U64, approx=True)
            return
        if op == 0xD0:  # end / bswap
            # byte swaps: the running 6.18 gives an unknown value of the width (its log shows
            # be32 -> [0, 0xffffffff]); approx when some input bits were known (it may swap
            # them: knowledge the model does not have)
            width = ins.imm if ins.imm in (16, 32, 64) else 64
            m = (1 << width) - 1
            swap = not w32 or bool(code & 8)      # BPF_ALU64 bswap, or to-big-endian on x86
            if a.t == "scalar" and a.const:
                # the running kernel swaps constants exactly (its log: "be16 r1 ; R1=256")
                v = a.tv & m
                if swap:
                    v = int.from_bytes(v.to_bytes(width // 8, "little"), "big")
                regs[d] = known(v, a.approx)
                return
            known_bits = a.t == "scalar" and (a.tm & m) != m
            regs[d] = scalar(0, m, approx=known_bits or a.approx)
            return
        if a.t == "scalar" and b.t == "scalar":
            r = alu_scalar(op, a, b, w32)
            if op in (0x00, 0x10) and a.id and (b.const or (w32 and zext32(b).const)):
                # adjust_reg_min_max_vals(): rX += const keeps rX linked to the scalars it was
                # copied from, with the constant as offset (BPF_ADD_CONST)
                val = (b.tv & U32) if w32 else b.tv
                off = _s32(val)
                ok = not a.ac and (w32 or S32MIN32 <= _s64(val) <= S32MAX32)
                if op == 0x10:
                    ok = ok and off != S32MIN32
                    off = -off
                if ok:
                    r = _linked(r, a.id, 32 if w32 else 64, off)
            regs[d] = r
            return
        # pointer arithmetic: the scalar operand becomes precise (adjust_reg_min_max_vals)
        if not w32 and op in (0x00, 0x10):
            if a.t != "scalar" and b.t == "scalar":
                if x and a.t != "none":
                    self.mark_precise(st, 1 << ins.src, 0, True)
                regs[d] = self.ptr_add(a, b, op == 0x10)
                return
            if a.t == "scalar" and b.t != "scalar" and op == 0x00:
                if b.t != "none":
                    self.mark_precise(st, 1 << d, 0, True)
                regs[d] = self.ptr_add(b, a, False)
                return
            if a.t != "scalar" and b.t != "scalar" and op == 0x10:
                regs[d] = scalar(approx=True)
                return
        regs[d] = scalar(0, U32 if w32 else U64, approx=True)

    def id_before_mov(self, b: Reg) -> Reg:
        """assign_scalar_id_before_mov(): a linked (rX += const) source loses its link; a
        non-constant source without an id gets one, shared with the copy."""
        if b.t != "scalar":
            return b
        if b.ac:
            b = _linked(b, 0, 0, 0)
        if not b.const and not b.id:
            b = _linked(b, self.new_id(), b.ac, b.off)
        return b

    def ptr_add(self, p: Reg, k: Reg, sub: bool) -> Reg:
        if p.t in ("map_value_or_null", "mem_or_null", "pkt_end"):
            return scalar(approx=True)  # the kernel refuses it
        if k.const:
            v = _s64(k.tv)
            return Reg(p.t, p.umin, p.umax, p.smin, p.smax, p.tv, p.tm,
                       p.off - v if sub else p.off + v, p.rng, p.id, p.mp, p.approx, p.ac)
        var = Reg("scalar", p.umin, p.umax, p.smin, p.smax, p.tv, p.tm, approx=p.approx)
        if p.const and p.tv == 0:
            var = known(0)
        nv = alu_scalar(0x10 if sub else 0x00, var, k, False)
        rng, pid = (0, self.new_id()) if p.t in ("pkt", "pkt_meta") else (p.rng, p.id)
        return Reg(p.t, nv.umin, nv.umax, nv.smin, nv.smax, nv.tv, nv.tm, p.off, rng, pid, p.mp,
                   nv.approx or p.approx, p.ac)

    def load(self, ins: Insn, st: State) -> None:
        regs = st.regs
        code = ins.code
        size = {0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8}[code & 0x18]
        sx = code & 0xE0 == 0x80
        base = regs[ins.src]
        d = ins.dst
        if base.t == "ctx":
            if not base.const:
                regs[d] = sized_unknown(size)
                return
            o = base.off + ins.off
            regs[d] = {0: ptr("pkt"), 4: ptr("pkt_end"),
                       8: ptr("pkt_meta")}.get(o) or sized_unknown(size)
            return
        if base.t == "stack":
            if not (base.const and base.tv == 0):
                regs[d] = sized_unknown(size) if not sx else sign_unknown(size)
                return
            off = base.off + ins.off
            r = self.stack_read(st, off, size)
            if sx and r.t == "scalar" and not r.const:
                r = sign_unknown(size)
            regs[d] = r
            return
        approx = base.t == "map_value" and base.mp.startswith(".rodata")
        regs[d] = sign_unknown(size) if sx else sized_unknown(size, approx)

    def stack_read(self, st: State, off: int, size: int) -> Reg:
        k = (-off - 1) // 8
        slot = st.stack.get(k)
        if slot is None:
            return sized_unknown(size)
        lo = off + 8 * (k + 1)    # byte offset within the slot, 0 = lowest address
        if slot.types[0] == "s":
            spilled = slot.spilled
            spill_size = 0
            for t in slot.types:
                if t != "s":
                    break
                spill_size += 1
            if size == 8 and spill_size == 8:
                st.hist += 1
                self.extra = k          # INSN_F_STACK_ACCESS: a fill
                return spilled
            if spilled.t != "scalar":
                return sized_unknown(size)
            if size <= spill_size and lo == 0:
                st.hist += 1
                self.extra = k
                r = spilled
                if size < 8 and r.umax >> (8 * size):
                    r = _coerce(r, size)
                    r = _linked(r, 0, 0, 0)
                return r
            types = slot.types[lo:lo + size]
            if all(t == "s" for t in types) and spilled.const and spilled.tv == 0:
                st.hist += 1
                self.extra = k          # "this IS register fill, so keep insn_flags"
                return known(0)
            if all(t == "z" for t in types):
                return known(0)
            return sized_unknown(size)
        types = slot.types[lo:lo + size]
        if types and all(t == "z" for t in types):
            return known(0)
        return sized_unknown(size)

    def store(self, ins: Insn, st: State) -> None:
        code = ins.code
        regs = st.regs
        size = {0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8}[code & 0x18]
        base = regs[ins.dst]
        is_st = code & 7 == 2
        if code & 0xE0 == 0xC0:  # atomics
            if ins.imm & 1:
                regs[ins.src] = sized_unknown(size)
            if ins.imm == 0xF1:
                regs[0] = sized_unknown(size)
            if base.t == "stack":
                self.stack_write(st, base.off + ins.off, size, None, False, 1, -1)
            return
        if base.t != "stack":
            return
        if not (base.const and base.tv == 0):
            # variable offset write (check_stack_write_var_off): the bytes it may touch
            # become MISC (ZERO stays ZERO when zero is written), spills there are destroyed;
            # writing a zero register makes it precise
            val = None if is_st else regs[ins.src]
            zero = (val is not None and val.t == "scalar" and val.const and val.tv == 0) or \
                (is_st and ins.imm == 0)
            lo_off = base.off + ins.off + max(base.smin, -512)
            hi_off = base.off + ins.off + min(base.smax, 512) + size
            zero_used = False
            for off in range(lo_off, hi_off):
                if off >= 0 or off < -512:
                    continue
                k = (-off - 1) // 8
                b = off + 8 * (k + 1)
                sl = st.stack.get(k)
                if zero and sl is not None and sl.types[b] == "z":
                    zero_used = True
                    continue
                self.stack_write(st, off, 1, None, False, 1, -1)
            if zero_used and not is_st:
                self.mark_precise(st, 1 << ins.src, 0, True)
            return
        off = base.off + ins.off
        val = None if is_st else regs[ins.src]
        self.stack_write(st, off, size, val, is_st, ins.imm, -1 if is_st else ins.src)

    def stack_write(self, st: State, off: int, size: int, val: Reg | None, is_st: bool,
                    imm: int, src: int) -> None:
        k = (-off - 1) // 8
        lo = off + 8 * (k + 1)
        old = st.stack.get(k)
        types = list(old.types) if old is not None else ["i"] * 8
        aligned = off % 8 == 0
        if val is not None and aligned and val.t == "scalar":
            r = val
            if size == 8 or r.umax >> (8 * size) == 0:
                r = self.id_before_mov(r)
                st.regs[src] = r
            else:
                r = _linked(r, 0, 0, 0)
            self._spill(st, k, r, size, types)
            st.hist += 1
            self.extra = k              # INSN_F_STACK_ACCESS: a spill
            return
        if val is None and is_st and aligned:
            self._spill(st, k, known(imm), size, types)
            st.hist += 1
            self.extra = k
            return
        if val is not None and val.t != "scalar" and val.t != "none" and size == 8 and aligned:
            st.stack[k] = Slot(("s",) * 8, val)
            st.hist += 1
            self.extra = k
            return
            # the kernel refuses a narrow spill of a pointer
        zero = (val is not None and val.t == "scalar" and val.const and val.tv == 0) or \
               (val is None and is_st and imm == 0)
        if zero and src >= 0:
            # STACK_ZERO from a register: "force originating register to be precise"
            self.mark_precise(st, 1 << src, 0, True)
        if old is not None and any(t == "s" for t in types):
            types = [("m" if t == "s" else t) for t in types]
        for b in range(lo, lo + size):
            types[b] = "z" if zero else "m"
        st.stack[k] = Slot(tuple(types), NOT_INIT)

    @staticmethod
    def _spill(st: State, k: int, r: Reg, size: int, types: list[str]) -> None:
        if size == 8:
            st.stack[k] = Slot(("s",) * 8, r)
            return
        nt = []
        for b in range(8):
            if b < size:
                nt.append("s")
            else:
                t = types[b]
                nt.append("z" if t == "z" else "i" if t == "i" else "m")
        st.stack[k] = Slot(tuple(nt), r)

    def call(self, i: int, ins: Insn, st: State) -> None:
        regs = st.regs
        h = ins.imm
        r1 = regs[1]
        # arguments the kernel makes precise: sizes (check_mem_size_reg), ringbuf_reserve's
        # size; a helper not in the table: every scalar argument (over-marks)
        want = _SIZE_ARGS.get(h, 0b111110)
        want = sum(1 << q for q in range(1, 6) if want >> q & 1 and regs[q].t == "scalar")
        # map keys of arrays: a constant key spilled to the stack (get_constant_map_key)
        if h in (1, 2, 3, 195) and self.maps.get(r1.mp, NO_MAP).kind in (2, 6):
            ck = self.constant_key(st, regs[2])
            if ck is not None and ck[1] is not None:
                self.mark_precise(st, want, 1 << ck[1], True)
                want = 0
        if want:
            self.mark_precise(st, want, 0, True)
        if h in (88, 89) and regs[2].t == "stack" and regs[2].const:
            # map_pop_elem / map_peek_elem write the value into the stack: those bytes are MISC
            size = self.maps.get(r1.mp, NO_MAP).value_size
            base = regs[2].off + regs[2].tv
            for off in range(base, min(base + size, 0)):
                self.stack_write(st, off, 1, None, False, 1, -1)
        if h == 1:  # map_lookup_elem
            r0 = ptr("map_value_or_null", id=self.new_id(), mp=r1.mp)
            kind, max_entries = self.maps.get(r1.mp, NO_MAP)[:2]
            if kind in (2, 6):  # arrays: a constant key in range elides the null check
                ck = self.constant_key(st, regs[2])
                if ck is not None and ck[0] < max_entries:
                    r0 = ptr("map_value", mp=r1.mp)
        elif h == 131:  # ringbuf_reserve
            nid = self.new_id()
            r0 = ptr("mem_or_null", id=nid, mp="ringbuf")
        elif h in (93, 94, 132, 133):  # spin_lock/unlock, ringbuf_submit/discard: void
            r0 = NOT_INIT
        elif h == 8:
            r0 = scalar(approx=True)   # get_smp_processor_id: the kernel knows < nr_cpu_ids
        else:
            r0 = scalar()   # RET_INTEGER: unknown, as in the kernel
        if h in (44, 54, 65):  # packet data may move: every packet pointer is invalid
            def inval(r: Reg) -> Reg:
                return scalar(approx=True) if r.t in ("pkt", "pkt_meta", "pkt_end") else r
            for j in range(11):
                regs[j] = inval(regs[j])
            for k, sl in list(st.stack.items()):
                if sl.types[0] == "s" and sl.spilled.t in ("pkt", "pkt_meta", "pkt_end"):
                    st.stack[k] = Slot(("m",) * 8, NOT_INIT)
        if h == 170:  # timer_set_callback: the callback is verified as a new state
            fn = regs[2]
            if fn.t == "func":
                start = self.lay.func_start[fn.mp]
                cregs = [NOT_INIT] * 11
                cregs[1] = Reg("map_ptr", 0, 0, 0, 0, 0, 0, mp="timer_map")
                cregs[2] = Reg("map_key", 0, 0, 0, 0, 0, 0)
                cregs[3] = Reg("map_value", 0, 0, 0, 0, 0, 0, mp="timer_map")
                cregs[10] = Reg("stack", 0, 0, 0, 0, 0, 0, off=0, mp="async")
                self.work.append((start, State(cregs, {}, callsite=i)))  # fresh state, no parent
        regs[0] = r0
        for j in range(1, 6):
            regs[j] = NOT_INIT

    @staticmethod
    def constant_key(st: State, key: Reg, key_size: int = 4) -> tuple[int, int | None] | None:
        """get_constant_map_key: (key, the slot of the spilled scalar holding it or None)"""
        if key.t != "stack" or not key.const:
            return None
        off = key.off + key.tv
        k = (-off - 1) // 8
        lo = off + 8 * (k + 1)
        slot = st.stack.get(k)
        if slot is None:
            return None
        zeros = 0
        for b in range(lo, 8):
            if slot.types[b] != "z":
                break
            zeros += 1
        if zeros >= key_size:
            return 0, None
        if slot.types[0] != "s" or slot.spilled.t != "scalar":
            return None
        spill = 0
        for b in range(lo, 8):
            if slot.types[b] != "s":
                break
            spill += 1
        if spill != key_size or not slot.spilled.const:
            return None
        return slot.spilled.tv, k

    def cond(self, i: int, ins: Insn, st: State) -> int | None:
        code = ins.code
        w32 = code & 7 == 6
        op = code & 0xF0
        x = code & 8
        regs = st.regs
        d = ins.dst
        a = regs[d]
        b = regs[ins.src] if x else known((ins.imm & U32) if w32 else ins.imm)
        taken_idx = i + 1 + ins.off
        fall_idx = i + 1
        if op == 0xE0:
            raise Unsupported("may_goto")
        # pointers
        if a.t != "scalar" or b.t != "scalar":
            return self.cond_ptr(ins, st, a, b, op, w32, x, taken_idx, fall_idx)
        pred = branch_taken(a, b, op, w32)
        if pred >= 0:
            # is_branch_taken() decided: both operands precise
            self.mark_precise(st, (1 << d) | ((1 << ins.src) if x else 0), 0, True)
            return taken_idx if pred == 1 else fall_idx
        # the model cannot decide; where its knowledge of an operand may be weaker than the
        # kernel's (approx), the kernel may have decided: make it precise all the same
        want = (1 << d if a.approx else 0) | (1 << ins.src if x and b.approx else 0)
        if want:
            self.mark_precise(st, want, 0, True)
        # linked scalars (collect_linked_regs) go to the jump history
        lr = ls = 0
        for q in ((ins.src, d) if x else (d,)):
            rid = regs[q].id
            if regs[q].t != "scalar" or not rid:
                continue
            for j in range(10):
                if regs[j].t == "scalar" and regs[j].id == rid:
                    lr |= 1 << j
            for k, sl in st.stack.items():
                if sl.types[0] == "s" and sl.spilled.t == "scalar" and sl.spilled.id == rid:
                    ls |= 1 << k
        if bin(lr).count("1") + bin(ls).count("1") > 1:
            self.extra = (lr, ls)
            st.hist += 1
        # both: push the taken branch, continue with the fall-through
        other = st.copy()
        ta, tb = refine(a, b, op, w32)
        fa, fb = refine(a, b, _NEG[op], w32) if op in _NEG else (a, b)
        if w32:
            # a 32-bit comparison of a value wider than 32 bits: the kernel refines its
            # 32-bit bounds (and what follows from them), the model cannot: approx
            def wide(r: Reg) -> Reg:
                return replace(r, approx=True) if r.umax > U32 else r
            ta, fa = wide(ta), wide(fa)
            if x:
                tb, fb = wide(tb), wide(fb)
        self._set_linked(other, d, ta)
        if x:
            self._set_linked(other, ins.src, tb)
        self._set_linked(st, d, fa)
        if x:
            self._set_linked(st, ins.src, fb)
        self.push(taken_idx, other)
        return fall_idx

    @staticmethod
    def _set_linked(st: State, r: int, new: Reg) -> None:
        """The refined register, and sync_linked_regs(): the scalars sharing its id get its
        range (shifted by the difference of their BPF_ADD_CONST offsets)."""
        old = st.regs[r]
        if old is new:
            return
        if old.t == "scalar" and new.t == "scalar":
            new = _linked(new, old.id, old.ac, old.off)
        st.regs[r] = new
        if not (old.id and old.t == "scalar"):
            return

        def linked(q: Reg) -> Reg:
            # copy_register_state(reg, known_reg): the id and its BPF_ADD_CONST flag come
            # from the refined register too (only `off` is kept when the offsets differ)
            if (not q.ac and not new.ac) or q.off == new.off:
                return new
            delta = known((_s32(q.off) - _s32(new.off)) & U64)
            plain = _linked(new, 0, 0, 0)
            v = alu_scalar(0x00, plain, delta, False)
            if q.ac == 32 or new.ac == 32:
                v = zext32(v)
            return _linked(v, new.id, new.ac, q.off)
        for j in range(11):
            q = st.regs[j]
            if j != r and q.t == "scalar" and q.id == old.id:
                st.regs[j] = linked(q)
        for k, sl in list(st.stack.items()):
            q = sl.spilled
            if sl.types[0] == "s" and q.t == "scalar" and q.id == old.id:
                st.stack[k] = Slot(sl.types, linked(q))

    def cond_ptr(self, ins: Insn, st: State, a: Reg, b: Reg, op: int, w32: bool, x: int,
                 taken_idx: int, fall_idx: int) -> int | None:
        regs = st.regs
        d, s = ins.dst, ins.src
        # pointer against constant zero: null checks
        if a.t == "scalar" and b.t != "scalar" and a.const:   # is_branch_taken() swaps them
            a, b, d, s = b, a, s, d
            op = _FLIP.get(op, op)
        zero_b = b.t == "scalar" and b.const and b.tv == 0
        if a.t != "scalar" and zero_b and op in (_JEQ, _JNE) and not w32:
            if a.t in ("map_value", "map_key", "mem"):   # reg_not_null(): decided
                if x:
                    self.mark_precise(st, 1 << s, 0, True)
                return fall_idx if op == _JEQ else taken_idx
            if a.t.endswith("_or_null"):
                other = st.copy()
                null_st, ok_st = (other, st) if op == _JEQ else (st, other)
                self._mark_null(null_st, a.id, True)
                self._mark_null(ok_st, a.id, False)
                self.push(taken_idx, other)
                return fall_idx
        a, b = regs[ins.dst], (regs[ins.src] if x else b)
        d, s = ins.dst, ins.src
        op = ins.code & 0xF0
        if x and not w32 and self._pkt_pair(a, b):
            pred = self._pkt_taken(a, b, op)
            if pred == 1:
                return taken_idx
            if pred == 0:
                return fall_idx
            other = st.copy()
            self._pkt_compare(op, d, s, a, b, st, other)
            self.push(taken_idx, other)
            return fall_idx
        other = st.copy()
        self.push(taken_idx, other)
        return fall_idx

    @staticmethod
    def _pkt_pair(a: Reg, b: Reg) -> bool:
        kinds = {a.t, b.t}
        return kinds in ({"pkt", "pkt_end"}, {"pkt_meta", "pkt"})

    @staticmethod
    def _pkt_taken(a: Reg, b: Reg, op: int) -> int:
        if b.t == "pkt_end":
            pkt = a
        elif a.t == "pkt_end":
            pkt, op = b, _FLIP[op]
        else:
            return -1
        if pkt.rng >= 0:
            return -1
        if op in (_JLE, _JGT):
            if pkt.rng == BEYOND_PKT_END:
                return int(op == _JGT)
        elif op in (_JLT, _JGE) and pkt.rng in (BEYOND_PKT_END, AT_PKT_END):
            return int(op == _JGE)
        return -1

    def _pkt_compare(self, op: int, d: int, s: int, a: Reg, b: Reg, this: State, other: State) -> None:
        fwd = (a.t == "pkt" and b.t == "pkt_end") or (a.t == "pkt_meta" and b.t == "pkt")
        rev = (a.t == "pkt_end" and b.t == "pkt") or (a.t == "pkt" and b.t == "pkt_meta")
        if op == _JGT:
            if fwd:
                self._good(this, a, False)
                self._mark_end(other, d, True)
            elif rev:
                self._good(other, b, True)
                self._mark_end(this, s, False)
        elif op == _JLT:
            if fwd:
                self._good(other, a, True)
                self._mark_end(this, d, False)
            elif rev:
                self._good(this, b, False)
                self._mark_end(other, s, True)
        elif op == _JGE:
            if fwd:
                self._good(this, a, True)
                self._mark_end(other, d, False)
            elif rev:
                self._good(other, b, False)
                self._mark_end(this, s, True)
        elif op == _JLE:
            if fwd:
                self._good(other, a, False)
                self._mark_end(this, d, True)
            elif rev:
                self._good(this, b, True)
                self._mark_end(other, s, False)

    @staticmethod
    def _good(st: State, p: Reg, right_open: bool) -> None:
        if p.off < 0 or (p.off == 0 and right_open):
            return
        if p.umax > MAX_PACKET_OFF or p.umax + p.off > MAX_PACKET_OFF:
            return
        new = p.off - 1 if right_open else p.off
        for j in range(11):
            q = st.regs[j]
            if q.t == p.t and q.id == p.id and q.rng < new:
                st.regs[j] = replace(q, rng=new)
        for k, sl in list(st.stack.items()):
            q = sl.spilled
            if sl.types[0] == "s" and q.t == p.t and q.id == p.id and q.rng < new:
                st.stack[k] = Slot(sl.types, replace(q, rng=new))

    @staticmethod
    def _mark_end(st: State, r: int, beyond: bool) -> None:
        q = st.regs[r]
        if q.t in ("pkt", "pkt_meta"):
            st.regs[r] = replace(q, rng=BEYOND_PKT_END if beyond else AT_PKT_END)

    @staticmethod
    def _mark_null(st: State, pid: int, is_null: bool) -> None:
        def fix(q: Reg) -> Reg:
            if q.id != pid or not q.t.endswith("_or_null"):
                return q
            if is_null:
                return known(0)
            return replace(q, t=q.t[: -len("_or_null")],
                           id=0 if q.t == "map_value_or_null" else q.id)
        for j in range(11):
            st.regs[j] = fix(st.regs[j])
        for k, sl in list(st.stack.items()):
            if sl.types[0] == "s":
                n = fix(sl.spilled)
                if n is not sl.spilled:
                    st.stack[k] = Slot(sl.types, n)


def cls_is_bswap(code: int) -> bool:
    return code & 7 == 7


def _coerce(r: Reg, size: int) -> Reg:
    m = (1 << (8 * size)) - 1
    if r.const:
        return known(r.tv & m, r.approx)
    if r.umax <= m:
        return r
    return _sync("scalar", 0, m, 0, m, r.tv & m, r.tm & m, r.approx)


# ---------------------------------------------------------------- entry points

def explore(elf: bytes, program_name: str, max_processed: int = LIMIT,
            maps: dict[str, MapShape] | None = None, deadline: float | None = None) -> Result:
    """Replay the verifier's exploration of one program of a compiled object. `maps` gives
    each map's kernel type and max_entries (array lookups with a constant key are not null)."""
    lay = layout(elf, program_name)
    return Explorer(lay, max_processed, maps, deadline).run(0)


def estimate_object(elf: bytes, program_name: str,
                    maps: dict[str, MapShape] | None = None) -> int:
    """The model's estimate of the kernel's `processed` count for `program_name`: the
    replayed count times MARGIN, or LIMIT + 1 when the replay passed the limit."""
    return explore(elf, program_name, maps=maps).estimate


# ---------------------------------------------------------------- the checker's second opinion

# How long `etran check` lets the replay run on one program, all its refused hooks together:
# the longest replay of an accepted hook measured takes 0.3 s; one past the limit, 10 s.
REPLAY_SECONDS = 10.0
# The replay stops there: its count times MARGIN would be over the kernel's limit.
MAX_REPLAYED = int(LIMIT / MARGIN)


@dataclass(frozen=True, slots=True)
class Opinion:
    """The replay's estimate of a hook's verifier work (its count times MARGIN, rounded up),
    or None and what it found instead (the end of "replayed over the compiled
    instructions, ...")."""

    estimate: int | None
    why: str = ""


def map_shapes(program: tir.Program) -> dict[str, MapShape]:
    return {m.name: MapShape(m.kernel_type, m.max_entries, m.value_size, m.key_size)
            for m in program.maps}


def second_opinion(program: tir.Program, elf: bytes, hooks: list[str],
                   seconds: float | None = None) -> dict[str, Opinion]:
    """Replay the compiled programs that `hooks` are verified in (`elf`: `program` compiled
    without observation). A hook is verified as its own program; a @timer handler as a
    callback inside every program that starts its timer (`<handler>_timer_cb` among the
    program's subprograms), and its opinion is the largest of theirs: a bound on the
    handler's share of each. The replays stop at MAX_REPLAYED instructions each and, all
    together, after `seconds` (REPLAY_SECONDS unless given)."""
    from etran.lower.context import TIMER_CALLBACK_SUFFIX
    seconds = REPLAY_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + seconds
    maps = map_shapes(program)
    obj = read_object(elf)
    done: dict[str, Opinion] = {}

    def replay(name: str) -> Opinion:
        if name in done:
            return done[name]
        try:
            res = explore(elf, name, MAX_REPLAYED, maps, deadline)
        except Unsupported as e:
            op = Opinion(None, f"cannot tell (the replay does not model {e})")
        else:
            if res.complete:
                op = Opinion(math.ceil(res.processed * MARGIN))
            else:
                # one message whichever bound it met first: which one depends on the machine
                op = Opinion(None, f"more than {LIMIT:,} (or more than {seconds:g} s to tell)")
        done[name] = op
        return op

    kinds = {h.name: h.hook for h in program.hooks}
    out: dict[str, Opinion] = {}
    for name in hooks:
        if kinds.get(name) != "timer":
            out[name] = replay(name)
            continue
        callback = name + TIMER_CALLBACK_SUFFIX
        starters = [p.name for p in obj.programs
                    if any(s.name == callback for s in p.subprograms)]
        if not starters:
            out[name] = Opinion(None, "cannot tell (no hook starts its timer)")
            continue
        opinions = [replay(p) for p in starters]
        failed = next((o for o in opinions if o.estimate is None), None)
        out[name] = failed or Opinion(max(o.estimate or 0 for o in opinions))
    return out

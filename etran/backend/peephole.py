"""Peephole passes on the emitted BPF: the waste LLVM leaves that the lowering cannot avoid.

Some of what LLVM emits is there because the lowering had to hide facts from LLVM's IR passes
(docs/performance.md): a null test's 0/1 result passes an inline-asm barrier so that two null
tests are never folded into one test of `a | b` (which the verifier refuses), and comes out as

    w1 = 1; if r0 == 0 goto +1; w1 = 0; if r1 != 0 goto L

where C compiled by clang has `if r0 == 0 goto L`. Once instructions are selected the fold can
no longer happen, so that is the place to branch directly. The passes here work on the object's
instructions, each proven safe by a data-flow fact over the function's control-flow graph:

* ``null tests``: a 0/1 value made by a conditional jump and only tested (dead at both exits of
  the test) becomes the jump itself (instructions LLVM put between the two that the test does
  not depend on move up, the only instructions any pass moves);
* ``branch over a goto``: ``if c goto +1; goto L`` becomes ``if !c goto L``;
* ``stores of constants``: ``rX = K; *(u64 *)(r10 - 8) = rX`` becomes the store of an
  immediate, where X is not read after;
* ``dead definitions``: an operation or load whose register nothing reads after;
* ``reloaded context fields``: ``rX = *(u32 *)(ctx + off)`` where rX holds that field already on
  every path (the packet's bounds, reloaded for each header view), with no call since;
* ``decided branches``: a test against a constant that the register's range, as the verifier
  bounds it, decides (a masked view offset against the packet's limit, ``port >> 6`` against
  an array's length), a nop or a ``goto``.

Not done: dropping ``wX = wX`` where X's upper half is already zero. It is no nop to the
verifier: the move copies the 32-bit bounds a JMP32 test proved into the 64-bit ones, which
the 32-bit test alone does not (tests/property/found/packet_offset_bound_folded_by_llvm.py is
refused without it).

Nothing else moves: an instruction a pass makes redundant becomes ``goto +0`` (``ja 0``),
which the kernel's verifier deletes once it has accepted the program (``opt_remove_nops``,
done for a loader with CAP_BPF, which etran's always is), adjusting jumps, line info and
subprogram starts itself. Jump offsets, relocations and the BTF's func_info and line_info
records stay valid without rewriting (an instruction moved up keeps the line of the slot it
moves to), and the verifier's log keeps the object's instruction numbers. No pass makes an
instruction unreachable (the verifier refuses unreachable code); none touches a relocated one.

The verifier's work changes with the code it walks: over the examples, transports and
bench/c twins, 187,812 instructions processed without the passes, 180,263 with them; most
hooks within a few percent either way, `tcp_rx` 13,723 -> 15,116 (1.10x), the option walk
4,339 -> 2,213. The checker's estimate is replayed over this object (etran.analysis.replay),
so it follows.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from etran.abi import helper_reads
from etran.backend import objfile

_LD, _LDX, _ST, _STX, _ALU, _JMP, _JMP32, _ALU64 = range(8)
_JA, _JEQ, _JNE, _CALL, _EXIT, _JCOND = 0x00, 0x10, 0x50, 0x80, 0x90, 0xE0
_MOV, _NEG, _END = 0xB0, 0x80, 0xD0
_X = 0x08
_MEM, _MEMSX, _ATOMIC = 0x60, 0x80, 0xC0
_SIZE_DW = 0x18
_LD_IMM64 = 0x18
_CALLER_SAVED = 0b111111  # r0-r5: a call's results and the registers it clobbers
_ARGS = 0b111110          # r1-r5: what a call may read
_ALL = 0x7FF              # r0-r10

# A condition and its negation (JSET has none).
_NEGATE = {0x10: 0x50, 0x50: 0x10, 0x20: 0xB0, 0xB0: 0x20, 0x30: 0xA0, 0xA0: 0x30,
           0x60: 0xD0, 0xD0: 0x60, 0x70: 0xC0, 0xC0: 0x70}

_INSN = struct.Struct("<BBhi")


@dataclass(slots=True)
class _Insn:
    code: int
    dst: int
    src: int
    off: int
    imm: int
    wide: bool = False   # the first slot of an ld_imm64 (the next slot is its second half)
    half: bool = False   # the second slot of an ld_imm64
    reloc: bool = False  # named by a relocation (a map's or a function's address, a call)

    @property
    def fixed(self) -> bool:
        """Relocated, or part of an ld_imm64: never rewritten."""
        return self.half or self.wide or self.reloc

    @property
    def cls(self) -> int:
        return self.code & 7

    @property
    def op(self) -> int:
        return self.code & 0xF0

    def is_jump(self) -> bool:
        return self.cls in (_JMP, _JMP32) and self.op not in (_CALL, _EXIT)

    def is_cond(self) -> bool:
        return self.is_jump() and self.op != _JA

    def pack(self) -> bytes:
        return _INSN.pack(self.code, self.dst | self.src << 4, self.off, self.imm)


def _decode(code: bytes, relocated: frozenset[int]) -> list[_Insn]:
    out: list[_Insn] = []
    second = False
    for i in range(len(code) // 8):
        c, regs, off, imm = _INSN.unpack_from(code, 8 * i)
        insn = _Insn(c, regs & 0xF, regs >> 4, off, imm)
        insn.half = second
        insn.wide = not second and c == _LD_IMM64
        insn.reloc = 8 * i in relocated
        second = insn.wide
        out.append(insn)
    return out


def _successors(insns: list[_Insn], i: int) -> tuple[int, ...]:
    insn = insns[i]
    if insn.half:
        return ()  # the second half of an ld_imm64 is never reached by itself
    if insn.wide:
        return (i + 2,)
    cls, op = insn.cls, insn.op
    if cls not in (_JMP, _JMP32) or op == _CALL:
        return (i + 1,)
    if op == _EXIT:
        return ()
    if op == _JA:
        return (i + 1 + (insn.imm if cls == _JMP32 else insn.off),)
    return (i + 1, i + 1 + insn.off)


def _use_def(insn: _Insn) -> tuple[int, int]:
    """Registers an instruction reads and registers it certainly writes, as bit masks. Reads
    may be too many and writes too few (both only keep a register alive longer). An atomic
    counts the registers its fetch may load among its writes: it reads them too, so they
    stay alive before it, and the passes that follow values forget them after it."""
    cls, op, d, s = insn.cls, insn.op, 1 << insn.dst, 1 << insn.src
    if cls in (_ALU, _ALU64):
        if op == _MOV:
            return (s if insn.code & _X else 0), d
        if op in (_NEG, _END):
            return d, d
        return d | (s if insn.code & _X else 0), d
    if cls == _LDX:
        return s, d
    if cls == _ST:
        return d, 0
    if cls == _STX:
        # an atomic's fetch loads the old value into src (cmpxchg: into r0)
        return (d | s | 1, s | 1) if insn.code & 0xE0 == _ATOMIC else (d | s, 0)
    if cls == _LD:
        # the legacy packet loads (LD_ABS, LD_IND) are not emitted: assume they read everything
        return (0, d) if insn.wide else (0, 0) if insn.half else (_ALL, 0)
    if op == _CALL:
        return (helper_reads(insn.imm) if insn.src == 0 else _ARGS), _CALLER_SAVED  # src 1: a subprogram
    if op == _EXIT:
        return 1, 0
    if op in (_JA, _JCOND):
        return 0, 0
    return d | (s if insn.code & _X else 0), 0


class _Function:
    """One function's instructions and what the passes need to know about them."""

    def __init__(self, insns: list[_Insn], entry_ctx: bool) -> None:
        self.insns = insns
        self.entry_ctx = entry_ctx  # r1 holds the program's context at the first instruction
        self.changed = 0     # instructions made nops
        self.rewrites = 0    # instructions rewritten (nops, moves, inverted or decided jumps)
        n = len(insns)
        self.succ = [_successors(insns, i) for i in range(n)]
        self.ud = [_use_def(insn) for insn in insns]   # (reads, writes) of each instruction
        self.preds: list[list[int]] = [[] for _ in range(n + 1)]
        for i, succ in enumerate(self.succ):
            for j in succ:
                if 0 <= j <= n:
                    self.preds[j].append(i)
        self._live: list[int] | None = None

    def set(self, i: int, insn: _Insn) -> None:
        """Rewrite instruction i, keeping successors and predecessors up to date (liveness
        is left as it was: see `stale_liveness`)."""
        n = len(self.insns)
        self.rewrites += 1
        for j in self.succ[i]:
            if 0 <= j <= n:
                self.preds[j].remove(i)
        self.insns[i] = insn
        self.succ[i] = _successors(self.insns, i)
        self.ud[i] = _use_def(insn)
        for j in self.succ[i]:
            if 0 <= j <= n:
                self.preds[j].append(i)

    def nop(self, i: int) -> None:
        self.set(i, _Insn(0x05, 0, 0, 0, 0))
        self.changed += 1

    def is_target(self, j: int) -> bool:
        """Whether a jump (not only the instruction before) leads to instruction j."""
        return any(p != j - 1 for p in self.preds[j])

    def stale_liveness(self) -> None:
        """Forget the liveness computed so far. Within a pass it is kept as it was before the
        pass's rewrites: each of them only makes registers dead (it drops reads, and drops a
        write only of a register nothing reads after), so the old sets hold every register
        live now. Between passes it is recomputed: dropping a reload (`_context_reloads`)
        makes the earlier load's register live further."""
        self._live = None

    # ---- liveness ------------------------------------------------------------------------------

    def live_in(self, i: int) -> int:
        """Registers live on entry to instruction i (all of them past the function's end)."""
        if i >= len(self.insns):
            return _ALL
        if self._live is None:
            self._live = self._liveness()
        return self._live[i]

    def _liveness(self) -> list[int]:
        n = len(self.insns)
        ud = self.ud
        live = [0] * n
        work = list(range(n))
        queued = [True] * n
        while work:
            i = work.pop()
            queued[i] = False
            out = 0
            for j in self.succ[i]:
                out |= live[j] if 0 <= j < n else _ALL
            use, kill = ud[i]
            new = use | (out & ~kill)
            if new != live[i]:
                live[i] = new
                for p in self.preds[i]:
                    if not queued[p]:
                        queued[p] = True
                        work.append(p)
        return live


# ---- the passes -----------------------------------------------------------------------------------

def _is_mov_imm(insn: _Insn) -> bool:
    return insn.code in (0xB4, 0xB7) and insn.off == 0 and insn.src == 0 and not insn.fixed


def _mov_value(insn: _Insn) -> int:
    """What `wX = imm` (zero-extended) or `rX = imm` (sign-extended) leaves in X, as 64 bits."""
    return insn.imm & 0xFFFFFFFF if insn.cls == _ALU else insn.imm & 0xFFFFFFFFFFFFFFFF


def _holds(code: int, value: int, imm: int, cls: int) -> bool:
    """Whether `if X <op> imm` jumps when X holds `value` (64 bits; its low half for JMP32)."""
    width = 32 if cls == _JMP32 else 64
    mask = (1 << width) - 1
    a, b = value & mask, imm & mask
    sa, sb = (a - (1 << width) if a >> (width - 1) else a), (b - (1 << width) if b >> (width - 1) else b)
    return {0x10: a == b, 0x50: a != b, 0x20: a > b, 0x30: a >= b, 0xA0: a < b, 0xB0: a <= b,
            0x40: bool(a & b), 0x60: sa > sb, 0x70: sa >= sb, 0xC0: sa < sb, 0xD0: sa <= sb}[code]


def _independent(insn: _Insn, a: int, tested: int) -> bool:
    """Whether `insn` may run before the test of `tested` instead of after it: it reads no
    register but the frame pointer (so no copy of a pointer the test checks for null, which
    the verifier allows no use of before), writes neither register, and does not jump."""
    use, kill = _use_def(insn)
    return (not insn.fixed and insn.cls not in (_JMP, _JMP32) and use & ~(1 << 10) == 0
            and not kill & ((1 << a) | tested) and not (insn.cls == _STX and insn.code & 0xE0 == _ATOMIC))


def _null_tests(f: _Function) -> None:
    """`wA = v1; if c goto +1; wA = v2; S; if wA <op> K goto L` -> `S; if c' goto L` (c' is c
    or !c), where S is instructions `_independent` of the test (`w7 = 2`, a reload from the
    stack) that LLVM scheduled between the 0/1 value and its use."""
    insns = f.insns
    for i in range(len(insns) - 3):
        first, test, other = insns[i:i + 3]
        if not (_is_mov_imm(first) and _is_mov_imm(other) and first.dst == other.dst):
            continue
        a = first.dst
        tested = (1 << test.dst) | ((1 << test.src) if test.code & _X else 0)
        if not (test.is_cond() and test.off == 1 and not test.fixed and test.op in _NEGATE
                and not tested & (1 << a)):
            continue
        k = i + 3
        while k < len(insns) and _independent(insns[k], a, tested) and f.preds[k + 1] == [k]:
            k += 1
        if k >= len(insns):
            continue
        use = insns[k]
        if not (use.is_cond() and not use.fixed and use.dst == a and not use.code & _X
                and use.op in (_JEQ, _JNE)):
            continue
        if f.preds[i + 1] != [i] or f.preds[i + 2] != [i + 1] or set(f.preds[i + 3]) != {i + 1, i + 2}:
            continue  # entered at the first instruction only
        # A holds the first constant when the test jumped, the other when it did not
        jumped, fell = (_holds(use.op, _mov_value(first), use.imm, use.cls),
                        _holds(use.op, _mov_value(other), use.imm, use.cls))
        if jumped == fell:
            continue
        target = k + 1 + use.off
        if (f.live_in(target) | f.live_in(k + 1)) & (1 << a):
            continue
        between = insns[i + 3:k]
        at = i + len(between)
        new_off = target - (at + 1)
        if not -32768 <= new_off <= 32767:
            continue
        op = test.op if jumped else _NEGATE[test.op]
        for j, moved in enumerate(between):
            f.set(i + j, moved)
        f.set(at, _Insn(test.cls | op | (test.code & _X), test.dst, test.src, new_off, test.imm))
        for j in range(at + 1, k + 1):
            f.nop(j)


def _branches_over_gotos(f: _Function) -> None:
    """`if c goto +1; goto L` -> `if !c goto L; goto +0`.

    Not for a range test against a constant (`if r9 < 6`, `if w2 < 65516`): those are mostly
    bounds LLVM could not prove and the verifier can (a loop index, a masked offset). The
    verifier then never walks the `goto L`, and deletes it and the test after loading
    (opt_hard_wire_dead_code_branches, opt_remove_dead_code); inverted, the test jumps to an
    instruction other paths reach, and stays. Equality tests and comparisons of two registers
    are seldom decided that way."""
    insns = f.insns
    for i in range(len(insns) - 1):
        test, goto = insns[i], insns[i + 1]
        if not (test.is_cond() and test.off == 1 and test.op in _NEGATE and not test.fixed):
            continue
        if not test.code & _X and test.op not in (_JEQ, _JNE):
            continue  # a range test of a constant bound: see the docstring
        if not (goto.code == 0x05 and goto.off != 0 and not goto.fixed) or f.is_target(i + 1):
            continue
        new_off = goto.off + 1
        if not -32768 <= new_off <= 32767:
            continue
        f.set(i, _Insn(test.cls | _NEGATE[test.op] | (test.code & _X), test.dst, test.src, new_off,
                       test.imm))
        f.nop(i + 1)


def _immediate_stores(f: _Function) -> None:
    """`rX = K; *(size *)(rD + off) = rX` -> `*(size *)(rD + off) = K`, X dead after.

    The store of an immediate (BPF_ST) is what C compilers for BPF v4 emit. To the verifier
    on this kernel the two are the same: into the stack at a slot's start both keep the
    constant (check_stack_write_fixed_off saves a register state for BPF_ST's immediate as
    for a scalar register), elsewhere in the stack both leave plain bytes (zero for K = 0);
    a map value or the packet keeps no state. A 64-bit store sign-extends its immediate, as
    `rX = K` does, so `wX = K` (zero-extended) goes only into stores of at most 32 bits, or
    with K >= 0."""
    insns = f.insns
    for i in range(len(insns) - 1):
        mov, store = insns[i], insns[i + 1]
        if not (_is_mov_imm(mov) and store.cls == _STX and store.code & 0xE0 == _MEM
                and not store.fixed and store.src == mov.dst and store.dst != mov.dst):
            continue
        wide = store.code & 0x18 == _SIZE_DW
        if wide and mov.cls == _ALU and mov.imm < 0:
            continue
        if f.preds[i + 1] != [i] or f.live_in(i + 2) >> mov.dst & 1:
            continue
        f.set(i, _Insn((store.code & ~7) | _ST, store.dst, 0, store.off, mov.imm))
        f.nop(i + 1)


def _dead_definitions(f: _Function) -> None:
    """An ALU operation, move or load whose result no path reads: a nop. What LLVM leaves
    of a load it had to keep (the bounds are volatile loads: `r8 = *(u32 *)(r1 + 0)` right
    before `r8 = *(u32 *)(r1 + 4)` in a loop). None of these has an effect but its register
    (a division by zero gives 0; a load the verifier would refuse is one nothing reads)."""
    insns = f.insns
    while True:   # until no more: what a dropped instruction read may be dead now too
        dead = [i for i, insn in enumerate(insns)
                if not insn.fixed and insn.dst != 10 and (
                    insn.cls in (_ALU, _ALU64)
                    or (insn.cls == _LDX and insn.code & 0xE0 in (_MEM, _MEMSX)))
                and not f.live_in(i + 1) >> insn.dst & 1]
        if not dead:
            return
        for i in dead:
            f.nop(i)
        f.stale_liveness()


_CTX = ("ctx",)


def _forget_fields(regs: list[object]) -> list[object]:
    """What `_context_reloads` knows of registers once the context's fields may have changed:
    which hold the context, not which hold its fields."""
    return [v if v == _CTX else None for v in regs]


def _context_reloads(f: _Function) -> None:
    """`rX = *(u32 *)(rC + off)`, rC the program's context, where rX holds that field already on
    every path and no call came between: a nop. Calls end what is known of the fields (a helper
    may move the packet: bpf_xdp_adjust_head), not which registers hold the context (r6-r9
    survive a call).

    To the verifier the register kept is the field it would load, with what the checks since
    the first load have proven about it: a packet pointer's range only grows with a check of a
    pointer derived from it (find_good_pkt_pointers), and on the failing side of a comparison
    with the packet's end it is marked past the end (mark_pkt_end), which allows no access,
    as the range 0 of a fresh load allows none."""
    if not f.entry_ctx:
        return
    insns = f.insns
    candidates = [i for i, insn in enumerate(insns) if insn.code == 0x61 and not insn.fixed]
    if not candidates:
        return
    n = len(insns)
    # per instruction, per register on entry: None (unknown), _CTX, or ("field", off);
    # None for the instruction itself while no path has reached it
    state: list[tuple[object, ...] | None] = [None] * n
    state[0] = (None, _CTX) + (None,) * 9
    work = [0]
    while work:
        i = work.pop()
        regs = list(state[i] or ())
        insn = insns[i]
        cls, d = insn.cls, insn.dst
        if cls in (_JMP, _JMP32) and insn.op == _CALL:
            regs = [None] * 6 + _forget_fields(regs[6:])
        elif insn.code == 0xBF and insn.off == 0:            # rD = rS (64-bit move)
            regs[d] = regs[insn.src]
        elif insn.code == 0x61 and regs[insn.src] == _CTX:   # rD = *(u32 *)(ctx + off)
            regs[d] = ("field", insn.off)
        elif cls in (_ST, _STX) and regs[d] == _CTX:            # a store into the context
            regs = _forget_fields(regs)
        else:
            _, kill = f.ud[i]
            for r in range(11):
                if kill >> r & 1:
                    regs[r] = None
        out = tuple(regs)
        for j in f.succ[i]:
            if not 0 <= j < n:
                continue
            old = state[j]
            new = out if old is None else tuple(a if a == b else None for a, b in zip(old, out, strict=True))
            if new != old:
                state[j] = new
                work.append(j)
    for i in candidates:
        insn, facts = insns[i], state[i]
        if facts is not None and facts[insn.src] == _CTX and facts[insn.dst] == ("field", insn.off):
            f.nop(i)


_U64 = (1 << 64) - 1
_U32 = (1 << 32) - 1
_Range = tuple[int, int]   # a register's possible values, unsigned, as [lo, hi] (64 bits)
_ANY: _Range = (0, _U64)
_JOINS = 8   # how often an instruction's ranges may grow before they are widened


def _low_half(r: _Range) -> _Range:
    """The range of a register's low 32 bits."""
    return r if r[1] <= _U32 else (0, _U32)


def _range_after(insn: _Insn, regs: dict[int, _Range]) -> _Range | None:
    """The range of the register `insn` writes, for the operations the verifier bounds at
    least as tightly (scalar_min_max_* and their 32-bit forms, narrow loads); None for an
    instruction this does not follow (its register is then any value)."""
    code, imm, d = insn.code, insn.imm, insn.dst
    if insn.fixed or (insn.off != 0 and insn.cls != _LDX) or insn.op == _END:
        return None                       # a byte swap may leave any 64-bit value
    wide = insn.cls == _ALU64
    if code in (0x71, 0x69):              # u8 and u16 loads (never the context's fields)
        return (0, 0xFF if code == 0x71 else 0xFFFF)
    if insn.cls not in (_ALU, _ALU64) or (insn.code & _X and insn.op != _MOV):
        return None                       # an operation with a register: not followed
    mask = _U64 if wide else _U32
    value = imm & mask                    # the immediate as the operation sees it
    lo, hi = regs.get(d, _ANY) if wide else _low_half(regs.get(d, _ANY))
    op = insn.op
    if op == _MOV:
        if insn.code & _X:
            return regs.get(insn.src, _ANY) if wide else _low_half(regs.get(insn.src, _ANY))
        return (value, value)
    if op == 0x50:                        # and
        return (0, min(hi, value))
    if op == 0x70 and value < (64 if wide else 32):   # logical right shift
        return (lo >> value, hi >> value)
    if op == 0x60 and value < (64 if wide else 32):   # left shift
        # bounded, as the verifier has it (scalar_min_max_lsh), only while the top bit
        # stays clear: hi at most 2 ** (width - 1 - count)
        width = 64 if wide else 32
        return (lo << value, hi << value) if hi <= 1 << (width - 1 - value) else (0, mask)
    if op == 0x00:                        # add: of a negative immediate, a subtraction
        add = imm if wide else (imm & _U32) - (1 << 32 if imm & 0x80000000 else 0)
        if lo + add >= 0 and hi + add <= mask:
            return (lo + add, hi + add)
    return (0, mask)


def _decided(insn: _Insn, r: _Range) -> bool | None:
    """Whether `if X <op> imm` jumps for every value of X in r (True), for none (False), or
    depends on the value (None)."""
    width = 32 if insn.cls == _JMP32 else 64
    lo, hi = r if width == 64 else _low_half(r)
    op = insn.op
    if op in (0x60, 0x70, 0xC0, 0xD0) and hi >> (width - 1):
        return None                       # signed, where a value may be negative
    if op == 0x40 and lo != hi:           # jset
        return None
    at_lo, at_hi = _holds(op, lo, insn.imm, insn.cls), _holds(op, hi, insn.imm, insn.cls)
    if op in (_JEQ, _JNE) and lo != hi:
        b = insn.imm & ((1 << width) - 1)
        return None if lo <= b <= hi else op == _JNE
    return at_lo if at_lo == at_hi else None


def _decided_branches(f: _Function) -> None:
    """A test of a register against a constant that the register's range decides: a nop
    (never jumps) or a `goto` (always does). What LLVM cannot drop because the lowering hid
    the value from it (a view's offset checked against the packet's limit, `(b << 2 & 60) +
    14 > 65515`; an array index of `port >> 6` checked against 1024), and what it would
    not know either (`be64 x >> 54`).

    The ranges are the verifier's own reasoning, done more coarsely: one [lo, hi] per
    register, joined where paths meet (one still growing after _JOINS joins, a loop's
    counter, is widened to any value), and only through moves, narrow loads, `and`, shifts
    and additions of constants, which the verifier bounds at least as tightly. So the
    verifier knows the outcome too and learns nothing from the test; it is walked as
    before. A jump whose removal would leave an instruction unreachable is kept (the
    verifier refuses unreachable code).

    The analysis runs over basic blocks, and a block's state holds only the registers known
    to be less than any value (most are not): on `tcp_rx` it is a few milliseconds."""
    insns = f.insns
    n = len(insns)
    tests = [insn.is_cond() and not insn.code & _X and not insn.fixed and insn.op != _JCOND
             for insn in insns]
    if not any(tests):
        return
    # Per instruction, once: the registers it writes, the one its range is computed from
    # (-1: none), and the range it gives when that one is any value.
    kills: list[int] = []
    inputs: list[int] = []
    blind: list[_Range | None] = []
    for i, insn in enumerate(insns):
        _, kill = f.ud[i]
        single = kill == 1 << insn.dst
        r = _range_after(insn, {}) if single else None
        kills.append(kill)
        blind.append(None if r == _ANY else r)
        inputs.append(-1 if r is None or insn.cls not in (_ALU, _ALU64) or _is_mov_imm(insn)
                      else insn.src if insn.op == _MOV else insn.dst)
    leaders = [i for i in range(n) if i == 0 or f.preds[i] != [i - 1] or f.succ[i - 1] != (i,)]
    ends = {a: (leaders[k + 1] if k + 1 < len(leaders) else n) for k, a in enumerate(leaders)}
    state: dict[int, dict[int, _Range]] = {0: {}}
    visits = dict.fromkeys(leaders, 0)
    work = [0]
    tested: dict[int, _Range] = {}       # a test's register range, on the last walk of its block
    while work:
        a = work.pop()
        regs = dict(state[a])
        i = a
        for i in range(a, ends[a]):
            if tests[i]:
                tested[i] = regs.get(insns[i].dst, _ANY)
            kill = kills[i]
            if not kill:
                continue
            src = inputs[i]
            r = _range_after(insns[i], regs) if src >= 0 and src in regs else blind[i]
            if regs:
                for k in [k for k in regs if kill >> k & 1]:
                    del regs[k]
            if r is not None and r != _ANY:
                regs[insns[i].dst] = r
        for j in f.succ[i]:
            if not 0 <= j < n:
                continue
            old = state.get(j)
            if old is None:
                new = regs
            elif visits[j] < _JOINS:          # joined: the range holding both
                new = {k: (min(old[k][0], v[0]), max(old[k][1], v[1]))
                       for k, v in regs.items() if k in old}
            else:   # widened: a register still changing (a loop's counter) is any value
                new = {k: v for k, v in regs.items() if old.get(k) == v}
            if new != old:
                state[j] = new
                visits[j] += 1
                work.append(j)
    decided = [(i, jumps) for i, r in sorted(tested.items())
               if (jumps := _decided(insns[i], r)) is not None]
    if not decided:
        return
    # The side no longer taken may have been the only way into some code (a loop entered
    # only there: its back edge still leads into it, but nothing else does; or two tests
    # that both jumped to one block). All at once, then, if something is lost, one by one.
    before = _reached(f)
    original = {i: insns[i] for i, _ in decided}
    for i, jumps in decided:
        f.set(i, _Insn(0x05, 0, 0, original[i].off if jumps else 0, 0))
    if _reached(f) != before:
        for i, _ in decided:
            f.set(i, original[i])
        for i, jumps in decided:
            f.set(i, _Insn(0x05, 0, 0, original[i].off if jumps else 0, 0))
            if _reached(f) != before:
                f.set(i, original[i])
    f.changed += sum(1 for i, _ in decided if insns[i] is not original[i] and insns[i].off == 0)


def _reached(f: _Function) -> list[bool]:
    """Which instructions a path from the function's entry reaches (an ld_imm64's second
    slot with its first)."""
    n = len(f.insns)
    seen = [False] * n
    work = [0]
    while work:
        i = work.pop()
        if seen[i]:
            continue
        seen[i] = True
        if f.insns[i].wide and i + 1 < n:
            seen[i + 1] = True
        work.extend(j for j in f.succ[i] if 0 <= j < n and not seen[j])
    return seen


PASSES = {"null tests": _null_tests, "branches over gotos": _branches_over_gotos,
          "context reloads": _context_reloads, "decided branches": _decided_branches,
          "immediate stores": _immediate_stores,
          "dead definitions": _dead_definitions}


def tighten_code(code: bytes, is_program: bool, relocated: frozenset[int] = frozenset(),
                 passes: tuple[str, ...] = tuple(PASSES)) -> tuple[bytes, int]:
    """One function's instructions with the passes applied (`passes`: some of them, by
    name, in their order), and how many became nops. `is_program`: r1 holds the context on
    entry; `relocated`: byte offsets never rewritten."""
    insns = _decode(code, relocated)
    f = _Function(insns, is_program)
    for name, run in PASSES.items():
        if name in passes:
            before = f.rewrites
            run(f)
            if f.rewrites != before:
                f.stale_liveness()
    return (b"".join(i.pack() for i in insns) if f.rewrites else code), f.changed


def tighten(elf: bytes) -> tuple[bytes, int]:
    """The object with every function's waste made nops; and how many instructions became nops."""
    data = bytearray(elf)
    removed = 0
    for extent in objfile.function_extents(elf):
        start, end = extent.file_offset, extent.file_offset + extent.size
        code, changed = tighten_code(bytes(data[start:end]), extent.is_program, extent.relocated)
        data[start:end] = code
        removed += changed
    return bytes(data), removed

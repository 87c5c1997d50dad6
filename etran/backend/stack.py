"""The stack a compiled program uses, read from its instructions.

The checker estimates each hook's stack from its structs plus room for register
spills (`etran.analysis.stack`), but how much LLVM spills is only known after
register allocation: a long run of reads it keeps alive at once (96 header
fields summed in one statement block) can take it past the kernel's 512 bytes.
LLVM's BPF back end treats that as a fatal error and exits the process, so
`etran.backend.emit` raises its limit and `etran.pipeline` measures the result
here, turning an overflow into a diagnostic at the hook.
"""
from __future__ import annotations

from etran.abi import MAX_BPF_STACK
from etran.backend.disasm import decode
from etran.backend.objfile import FunctionCode

_FP = 10
_MEM_CLASSES = (0x1, 0x2, 0x3)        # LDX, ST, STX
_ALU64, _MOV, _ADD, _X = 0x7, 0xB0, 0x00, 0x08


def stack_depth(function: FunctionCode, little_endian: bool = True) -> int:
    """Bytes below the frame pointer the function's code touches: loads and stores at
    `r10 + off`, and stack addresses made as `rX = r10; rX += off` (passed to helpers)."""
    deepest = 0
    fp_copies: dict[int, int] = {}    # register -> its offset from r10, when it holds one
    for insn in decode(b"".join(function.instructions), little_endian):
        cls = insn.code & 0x07
        if cls in _MEM_CLASSES:
            base = insn.src if cls == 0x1 else insn.dst
            if base == _FP or base in fp_copies:
                deepest = max(deepest, -(insn.off + fp_copies.get(base, 0)))
            if cls == 0x1:
                fp_copies.pop(insn.dst, None)
            continue
        if cls == _ALU64 and insn.code & 0xF0 == _MOV and insn.code & _X and insn.src == _FP:
            fp_copies[insn.dst] = 0
            continue
        if cls == _ALU64 and insn.code & 0xF0 == _ADD and not insn.code & _X \
                and insn.dst in fp_copies:
            fp_copies[insn.dst] += insn.imm
            deepest = max(deepest, -fp_copies[insn.dst])
            continue
        if cls in (0x4, 0x7, 0x0) and insn.dst in fp_copies:
            fp_copies.pop(insn.dst, None)       # the register now holds something else
    return deepest


def over_limit(function: FunctionCode, little_endian: bool = True) -> int | None:
    """The depth of `function`'s stack when it passes the kernel's limit, else None."""
    depth = stack_depth(function, little_endian)
    return depth if depth > MAX_BPF_STACK else None

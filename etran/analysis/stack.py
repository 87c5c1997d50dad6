"""The stack a hook needs: its own structs, every inlined callee's, and room for spills.

Functions are inlined into their hook, so a hook's stack is its own plus that of
every call (LLVM may reuse slots, so this is an upper bound on the structs) plus
what LLVM spills registers to.
"""
from __future__ import annotations

from etran.abi import MAX_BPF_STACK
from etran.ir import tir

MAX_STACK = MAX_BPF_STACK

# LLVM spills registers to the stack too; the examples spill up to 40 bytes beyond their
# structs (reliable_datagram ack: 32 -> 72, since packet views at constant offsets are
# plain addresses LLVM keeps in registers), so reserve more.
SPILL_MARGIN = 48


def struct_stack_bytes(f: tir.Function) -> int:
    """Structs and copies on the stack of `f`, every call inlined (LLVM may reuse slots)."""
    return f.stack_bytes + sum(struct_stack_bytes(c) for c, _ in f.call_sites)


def stack_bytes(f: tir.Function) -> int:
    """The stack a hook is expected to need: its structs plus room for register spills."""
    return struct_stack_bytes(f) + SPILL_MARGIN

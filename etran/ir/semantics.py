"""Integer semantics of the language: the single definition of every operator's result.

Both the constant folder and the reference interpreter call these functions,
and the LLVM lowering is tested against them. Every corner is defined; none
is left to LLVM (where it would be undefined behaviour):

* arithmetic wraps at the operand type's width (two's complement);
* `x // 0 == 0` and `x % 0 == x`, for signed and unsigned types (as BPF does);
* signed `//` rounds toward negative infinity and signed `%` takes the sign of
  the divisor, as in Python; `MIN // -1` wraps to `MIN`;
* a shift count is read as an unsigned number; shifting by the width or more
  gives 0 (`<<`, unsigned `>>`) or the sign fill (signed `>>`), as Python's
  unbounded integers would after wrapping;
* comparisons compare the values as the type's signedness says.
"""
from __future__ import annotations

from collections.abc import Callable

from etran.ir.types import IntType


def _floordiv(a: int, b: int) -> int:
    return 0 if b == 0 else a // b


def _mod(a: int, b: int) -> int:
    return a if b == 0 else a % b


def binary(op: str, a: int, b: int, t: IntType, count_bits: int = 64) -> int:
    """`a op b` at type `t`; for shifts, `b` is the count and `count_bits` its width."""
    if op == "+":
        return t.wrap(a + b)
    if op == "-":
        return t.wrap(a - b)
    if op == "*":
        return t.wrap(a * b)
    if op == "//":
        return t.wrap(_floordiv(a, b))
    if op == "%":
        return t.wrap(_mod(a, b))
    if op == "&":
        return t.wrap(a & b)
    if op == "|":
        return t.wrap(a | b)
    if op == "^":
        return t.wrap(a ^ b)
    if op in ("<<", ">>"):
        count = b & ((1 << count_bits) - 1)  # the count's bit pattern, as unsigned
        if op == "<<":
            return 0 if count >= t.bits else t.wrap(a << count)
        if count >= t.bits:
            return -1 if (t.signed and a < 0) else 0
        return t.wrap(a >> count)  # Python's >> on a signed value is arithmetic
    raise ValueError(f"unknown operator {op}")


def unary(op: str, a: int, t: IntType) -> int:
    if op == "-":
        return t.wrap(-a)
    if op == "~":
        return t.wrap(~a)
    raise ValueError(f"unknown operator {op}")


def compare(op: str, a: int, b: int) -> bool:
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    raise ValueError(f"unknown comparison {op}")


def exact_binary(op: str, a: int, b: int) -> int | None:
    """Folding of two untyped constants: exact Python integers. None for `x // 0`."""
    if op in ("//", "%") and b == 0:
        return None
    if op in ("<<", ">>") and b < 0:
        return None
    if op == "<<" and b > 4096:
        return None
    ops: dict[str, Callable[[], int | None]] = {
        "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "//": lambda: a // b,
        "%": lambda: a % b, "&": lambda: a & b, "|": lambda: a | b, "^": lambda: a ^ b,
        "<<": lambda: a << b, ">>": lambda: a >> b,
        "**": lambda: a ** b if 0 <= b <= 256 else None,
    }
    return ops[op]()


# ---------------------------------------------------------------- checksums

# `pkt.checksum` sums at most this many bytes: the compiled code walks the range in
# CHECKSUM_CHUNK-byte pieces (copied to the stack, summed by bpf_csum_diff), and the
# verifier needs a bound on the pieces. 4,096 bytes cover every frame XDP sees on a
# 4 KiB page.
CHECKSUM_MAX_BYTES = 4096
CHECKSUM_CHUNK = 64


def fold16(s: int) -> int:
    """A ones'-complement sum folded to 16 bits (end-around carry): 0 only when `s` is 0."""
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def checksum(data: bytes, offset: int, length: int, seed: int) -> int:
    """What `pkt.checksum(offset, length, seed)` returns on a packet holding `data`: the
    RFC 1071 sum of the bytes [offset, offset + length) clipped to the packet and to
    CHECKSUM_MAX_BYTES, as big-endian 16-bit words (an odd last byte padded with zero),
    folded; then `seed` (a u32) added and folded again. Not complemented."""
    n = max(0, min(length, len(data) - offset, CHECKSUM_MAX_BYTES)) if offset < len(data) else 0
    piece = bytes(data[offset:offset + n])
    if n % 2:
        piece += b"\0"
    total = sum(int.from_bytes(piece[i:i + 2], "big") for i in range(0, len(piece), 2))
    s = fold16(total)
    return fold16(s + (seed & 0xFFFF) + (seed >> 16))

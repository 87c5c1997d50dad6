"""Disassemble a compiled object into the kernel verifier's notation, with the DSL source interleaved.

Users read what the compiler made of their transport: ``r1 = *(u32 *)(r1 +0)``, ``if w1 != 0x8 goto
pc+10``, ``lock *(u64 *)(r1 +0) += r2``, ``call bpf_map_lookup_elem#1``, each block under the
``.BTF.ext`` line record that produced it (``; counters[0] += 1 @ flow.py:8``), exactly as the
verifier log will show them when the kernel complains.  The text follows ``kernel/bpf/disasm.c``
(``print_bpf_insn``): ALU immediates in decimal, jump immediates as unsigned hex, memory operands as
``(rN +off)``.  Two deliberate additions: a 64-bit immediate load ends in `` ll`` (as llvm-objdump
writes it) and shows what its relocation names: ``map[conns]``, ``func[on_timer]`` or ``&.rodata+8``.

Numbering is by 8-byte slot, so an ld_imm64 occupies two indices and
:attr:`ProgramListing.instruction_count` equals the kernel's ``insn_cnt`` (and llvm-objdump's
numbering), not the number of decoded instructions.  Subprograms are appended after the program in
libbpf's order and numbered on from there, so indices match what the verifier prints for the loaded
program (libbpf's relocations of calls, maps and callbacks keep the count); BPF-to-BPF call offsets
are shown relative to that layout.

Decoding is table driven: every opcode (and, where the kernel looks further, the ``off``, ``imm`` or
``src_reg`` field) maps to a ``str.format`` template over one set of operand fields.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from etran.abi import HELPERS, helper_name
from etran.backend.objfile import (
    INSN_SIZE,
    LD_IMM64,
    FunctionCode,
    ObjectFile,
    ProgramCode,
    split_instructions,
)

__all__ = [
    "HELPERS",
    "Insn",
    "InstructionLine",
    "ListingItem",
    "ProgramListing",
    "Reference",
    "SourceLine",
    "SubprogramLabel",
    "decode",
    "decode_one",
    "disassemble",
    "helper_name",
    "instruction_text",
    "jump_offset",
    "render",
]



# ---- decoded instructions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Insn:
    """One decoded instruction; ``imm64`` is the unsigned 64-bit value of an ld_imm64 pair."""

    code: int
    dst: int
    src: int
    off: int  # signed 16-bit
    imm: int  # signed 32-bit
    imm64: int | None = None
    next_imm: int = 0  # signed imm of an ld_imm64's second slot (map_value offsets)

    @property
    def slots(self) -> int:
        """8-byte slots this instruction occupies: 2 for ld_imm64, else 1."""
        return 2 if self.imm64 is not None else 1


@dataclass(frozen=True, slots=True)
class Reference:
    """What a relocation or call resolution says an instruction refers to."""

    kind: Literal["map", "func", "data", "extern"]
    name: str


def decode_one(raw: bytes, little_endian: bool = True) -> Insn:
    """Decode 8 bytes (or 16 for ld_imm64) into an :class:`Insn`."""
    end = "<" if little_endian else ">"
    code, regs, off, imm = struct.unpack_from(end + "BBhi", raw, 0)
    dst, src = (regs & 0xF, regs >> 4) if little_endian else (regs >> 4, regs & 0xF)
    if code == LD_IMM64 and len(raw) >= 2 * INSN_SIZE:
        (high,) = struct.unpack_from(end + "i", raw, 12)
        return Insn(code, dst, src, off, imm, ((high & 0xFFFFFFFF) << 32) | (imm & 0xFFFFFFFF), high)
    return Insn(code, dst, src, off, imm)


def decode(code: bytes, little_endian: bool = True) -> list[Insn]:
    """Decode a run of instructions; ld_imm64 pairs become one :class:`Insn` with ``slots == 2``."""
    return [decode_one(raw, little_endian) for raw in split_instructions(code)]


# ---- opcode tables (include/uapi/linux/bpf_common.h, bpf.h) -------------------------------------

_LD, _LDX, _ST, _STX, _ALU, _JMP, _JMP32, _ALU64 = range(8)
_K, _X = 0x00, 0x08
_SIZES = {0x00: "u32", 0x08: "u16", 0x10: "u8", 0x18: "u64"}
_SIGNED_SIZES = {0x00: "s32", 0x08: "s16", 0x10: "s8"}
_MEM, _MEMSX, _ATOMIC, _ABS, _IND = 0x60, 0x80, 0xC0, 0x20, 0x40
_ALU_OPS = {0x00: "+=", 0x10: "-=", 0x20: "*=", 0x30: "/=", 0x40: "|=", 0x50: "&=", 0x60: "<<=",
            0x70: ">>=", 0x90: "%=", 0xA0: "^=", 0xB0: "=", 0xC0: "s>>="}
_NEG, _END, _DIV, _MOD, _MOV = 0x80, 0xD0, 0x30, 0x90, 0xB0
_JMP_OPS = {0x10: "==", 0x20: ">", 0x30: ">=", 0x40: "&", 0x50: "!=", 0x60: "s>", 0x70: "s>=",
            0xA0: "<", 0xB0: "<=", 0xC0: "s<", 0xD0: "s<="}
_JA, _CALL, _EXIT, _JCOND = 0x00, 0x80, 0x90, 0xE0
_ATOMIC_OPS = {0x00: "add", 0x40: "or", 0x50: "and", 0xA0: "xor"}
_FETCH, _XCHG, _CMPXCHG, _LOAD_ACQ, _STORE_REL = 0x01, 0xE1, 0xF1, 0x100, 0x110

# Operand fields every template may use: d/s are registers named for the class (w for 32-bit ALU
# and JMP32), rd/rs always r; off and pc are signed with a sign; uimm is the kernel's 0x%x.
_FORMS: dict[int, str] = {}
_FORMS_BY_OFF: dict[tuple[int, int], str] = {}  # sdiv/smod (off 1) and movsx (off 8/16/32)
_FORMS_BY_IMM: dict[tuple[int, int], str] = {}  # atomics: the operation is in imm
_FORMS_BY_SRC: dict[tuple[int, int], str] = {}  # call kinds, may_goto, ld_imm64 pseudo sources
_JUMPS: set[int] = set()  # opcodes whose off field is a pc-relative jump


def _build_tables() -> None:
    for cls in (_ALU, _ALU64):
        for op, sym in _ALU_OPS.items():
            _FORMS[cls | op | _K] = f"{{d}} {sym} {{imm}}"
            _FORMS[cls | op | _X] = f"{{d}} {sym} {{s}}"
        for op, sym in ((_DIV, "s/="), (_MOD, "s%=")):
            _FORMS_BY_OFF[(cls | op | _K, 1)] = f"{{d}} {sym} {{imm}}"
            _FORMS_BY_OFF[(cls | op | _X, 1)] = f"{{d}} {sym} {{s}}"
        for bits in (8, 16) if cls == _ALU else (8, 16, 32):
            _FORMS_BY_OFF[(cls | _MOV | _X, bits)] = f"{{d}} = (s{bits}){{s}}"
        _FORMS[cls | _NEG] = "{d} = -{d}"
    _FORMS[_ALU | _END | _K] = "{rd} = le{imm} {rd}"
    _FORMS[_ALU | _END | _X] = "{rd} = be{imm} {rd}"
    _FORMS[_ALU64 | _END] = "{rd} = bswap{imm} {rd}"
    for size, name in _SIZES.items():
        _FORMS[_LDX | _MEM | size] = f"{{rd}} = *({name} *)({{rs}} {{off}})"
        _FORMS[_ST | _MEM | size] = f"*({name} *)({{rd}} {{off}}) = {{imm}}"
        _FORMS[_STX | _MEM | size] = f"*({name} *)({{rd}} {{off}}) = {{rs}}"
        _FORMS_BY_IMM[(_STX | _ATOMIC | size, _LOAD_ACQ)] = f"{{rd}} = load_acquire(({name} *)({{rs}} {{off}}))"
        _FORMS_BY_IMM[(_STX | _ATOMIC | size, _STORE_REL)] = f"store_release(({name} *)({{rd}} {{off}}), {{rs}})"
        if size != 0x18:
            _FORMS[_LD | _ABS | size] = f"r0 = *({name} *)skb[{{imm}}]"
            _FORMS[_LD | _IND | size] = f"r0 = *({name} *)skb[{{rs}} + {{imm}}]"
    for size, name in _SIGNED_SIZES.items():
        _FORMS[_LDX | _MEMSX | size] = f"{{rd}} = *({name} *)({{rs}} {{off}})"
    for size, width in ((0x00, ""), (0x18, "64")):  # atomics exist for u32 and u64 only
        code, mem = _STX | _ATOMIC | size, f"({_SIZES[size]} *)({{rd}} {{off}})"
        for op, name in _ATOMIC_OPS.items():
            _FORMS_BY_IMM[(code, op)] = f"lock *{mem} {_ALU_OPS[op]} {{rs}}"
            _FORMS_BY_IMM[(code, op | _FETCH)] = f"{{rs}} = atomic{width}_fetch_{name}({mem}, {{rs}})"
        _FORMS_BY_IMM[(code, _XCHG)] = f"{{rs}} = atomic{width}_xchg({mem}, {{rs}})"
        _FORMS_BY_IMM[(code, _CMPXCHG)] = f"r0 = atomic{width}_cmpxchg({mem}, r0, {{rs}})"
    for cls in (_JMP, _JMP32):
        for op, sym in _JMP_OPS.items():
            _FORMS[cls | op | _K] = f"if {{d}} {sym} {{uimm}} goto pc{{pc}}"
            _FORMS[cls | op | _X] = f"if {{d}} {sym} {{s}} goto pc{{pc}}"
            _JUMPS.update((cls | op | _K, cls | op | _X))
    _FORMS[_JMP | _JA] = "goto pc{pc}"
    _FORMS[_JMP32 | _JA] = "gotol pc{pcimm}"
    _FORMS[_JMP | _EXIT] = "exit"
    _FORMS_BY_SRC[(_JMP | _JCOND, 0)] = "may_goto pc{pc}"
    _JUMPS.update((_JMP | _JA, _JMP | _JCOND))
    _FORMS_BY_SRC[(_JMP | _CALL, 0)] = "call {helper}#{imm}"
    _FORMS_BY_SRC[(_JMP | _CALL, 1)] = "call pc{pcimm}"
    _FORMS_BY_SRC[(_JMP | _CALL, 2)] = "call kernel-function#{imm}"
    _FORMS[_ST | 0xC0] = "nospec"  # BPF_ST | BPF_NOSPEC, only ever made by the verifier
    # ld_imm64 by src_reg: 0 plain, 1 MAP_FD, 2 MAP_VALUE, 3 BTF_ID, 4 FUNC, 5 MAP_IDX, 6 MAP_IDX_VALUE
    for src, value in enumerate(("{imm64}", "map[fd:{imm}]", "map[fd:{imm}][0]+{next_imm}",
                                 "btf_id[{imm}]", "func[pc{pcimm}]", "map[idx:{imm}]",
                                 "map[idx:{imm}][0]+{next_imm}")):
        _FORMS_BY_SRC[(LD_IMM64, src)] = f"{{rd}} = {value} ll"


_build_tables()


def instruction_text(insn: Insn, ref: Reference | None = None) -> str:
    """The kernel verifier's text for one instruction; ``ref`` names a relocated map, function or symbol."""
    if ref is not None:
        named = _referenced_text(insn, ref)
        if named is not None:
            return named
    template = (
        _FORMS_BY_OFF.get((insn.code, insn.off))
        or _FORMS_BY_IMM.get((insn.code, insn.imm))
        or _FORMS_BY_SRC.get((insn.code, insn.src))
        or _FORMS.get(insn.code)
    )
    if template is None or (insn.code == LD_IMM64 and insn.imm64 is None):
        return f"invalid opcode {insn.code:#04x}"
    wide = "w" if insn.code & 0x07 in (_ALU, _JMP32) else "r"
    return template.format(
        d=f"{wide}{insn.dst}", s=f"{wide}{insn.src}", rd=f"r{insn.dst}", rs=f"r{insn.src}",
        off=f"{insn.off:+d}", pc=f"{insn.off:+d}", pcimm=f"{insn.imm:+d}", imm=insn.imm,
        uimm=f"{insn.imm & 0xFFFFFFFF:#x}", imm64=f"{insn.imm64 or 0:#x}", next_imm=insn.next_imm,
        helper=helper_name(insn.imm),
    )


def _referenced_text(insn: Insn, ref: Reference) -> str | None:
    """Text for an instruction whose relocation names something; None to fall back to the tables."""
    if insn.code == LD_IMM64 and insn.imm64 is not None:
        if ref.kind == "map":
            return f"r{insn.dst} = map[{ref.name}] ll"
        if ref.kind == "func":
            return f"r{insn.dst} = func[{ref.name}] ll"
        addend = insn.imm  # REL relocations keep the addend in the instruction
        return f"r{insn.dst} = &{ref.name}{f'{addend:+d}' if addend else ''} ll"
    if insn.code == _JMP | _CALL and ref.kind == "extern":
        return f"call {ref.name}"  # a kfunc: src_reg 1 in the object, libbpf makes it 2 (KFUNC_CALL)
    return None


def is_nop(raw: bytes) -> bool:
    """`goto pc+0` (ja 0, every other field zero): what the verifier deletes after loading."""
    return raw[:1] == bytes([_JMP | _JA]) and not any(raw[1:8])


def jump_offset(insn: Insn) -> int | None:
    """Slots from the next instruction to a jump's or BPF-to-BPF call's target; None otherwise."""
    if insn.code == _JMP32 | _JA:
        return insn.imm  # gotol: the 32-bit offset lives in imm
    if insn.code == _JMP | _CALL:
        return insn.imm if insn.src == 1 else None
    if insn.code in _JUMPS:
        return insn.off
    if insn.code == LD_IMM64 and insn.src == 4:
        return insn.imm  # PSEUDO_FUNC after libbpf: relative like a call
    return None


# ---- listings ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceLine:
    """A line-info marker: the following instructions come from this DSL line."""

    file_name: str  # as recorded in .BTF (directory included); render prints the basename
    line: int
    text: str  # the source line, verbatim


@dataclass(frozen=True, slots=True)
class SubprogramLabel:
    """Start of an appended subprogram at listing index ``index``."""

    name: str
    index: int


@dataclass(frozen=True, slots=True)
class InstructionLine:
    """One instruction: its slot index, verifier text, and the index a jump or call goes to."""

    index: int
    text: str
    target: int | None
    raw: bytes


ListingItem = SourceLine | SubprogramLabel | InstructionLine


@dataclass(frozen=True, slots=True)
class ProgramListing:
    """A program with its subprograms, in load order.

    ``instruction_count`` counts 8-byte slots, ld_imm64 as 2, subprograms included: the kernel's
    ``insn_cnt`` for the loaded program. ``nops`` of them are ``goto pc+0``, left where the
    peephole passes (etran.backend.peephole) removed an instruction: the verifier deletes them
    once it has accepted the program, so ``instruction_count - nops`` run.
    """

    name: str
    section: str
    instruction_count: int
    lines: tuple[ListingItem, ...]

    @property
    def nops(self) -> int:
        return sum(1 for item in self.lines if isinstance(item, InstructionLine) and is_nop(item.raw))


def disassemble(obj: ObjectFile, program: str | None = None) -> list[ProgramListing]:
    """Listings for every program in ``obj``, or only the one called ``program`` (``KeyError`` if absent)."""
    chosen = [obj.program(program)] if program is not None else obj.programs
    return [_listing(obj, prog) for prog in chosen]


def _listing(obj: ObjectFile, prog: ProgramCode) -> ProgramListing:
    functions: list[FunctionCode] = [prog, *prog.subprograms]
    starts: dict[str, int] = {}
    index = 0
    for fn in functions:
        starts[fn.name] = index
        index += fn.slot_count
    lines: list[ListingItem] = []
    for fn in functions:
        if fn is not prog:
            lines.append(SubprogramLabel(fn.name, starts[fn.name]))
        lines.extend(_function_lines(obj, fn, starts))
    return ProgramListing(prog.name, prog.section, index, tuple(lines))


def _function_lines(obj: ObjectFile, fn: FunctionCode, starts: dict[str, int]) -> list[ListingItem]:
    base = starts[fn.name]
    records = sorted((r for r in obj.line_info.get(fn.section, ())
                      if fn.offset <= r.insn_offset < fn.offset + fn.slot_count * INSN_SIZE),
                     key=lambda r: r.insn_offset)
    relocs = obj.relocations.get(fn.section, {})
    out: list[ListingItem] = []
    shown: tuple[str, int] | None = None
    next_record, pos = 0, 0
    for raw in fn.instructions:
        while next_record < len(records) and records[next_record].insn_offset < fn.offset + pos + len(raw):
            rec = records[next_record]
            next_record += 1
            if (rec.file_name, rec.line) != shown:  # the kernel prints a line once per run of records
                shown = (rec.file_name, rec.line)
                out.append(SourceLine(rec.file_name, rec.line, rec.line_text))
        insn = decode_one(raw, obj.little_endian)
        index = base + pos // INSN_SIZE
        callee = fn.calls.get(pos)
        symbol = relocs.get(fn.offset + pos)
        ref = _reference(obj, insn, symbol, callee)
        target: int | None = None
        if callee is not None and callee in starts:
            target = starts[callee]
            if insn.code == _JMP | _CALL:  # show the offset the loaded program will have
                insn = replace(insn, imm=target - index - 1)
        elif symbol is None and (rel := jump_offset(insn)) is not None:
            target = index + 1 + rel  # a relocated call's imm means nothing until libbpf links it
        out.append(InstructionLine(index, instruction_text(insn, ref), target, raw))
        pos += len(raw)
    return out


def _reference(obj: ObjectFile, insn: Insn, symbol: str | None, callee: str | None) -> Reference | None:
    """Classify what an instruction's relocation (or resolved callee) names."""
    if callee is not None:
        return Reference("func", callee)
    if symbol is None:
        return None
    if symbol in obj.maps:
        return Reference("map", symbol)
    if symbol in obj.externs:
        return Reference("extern", symbol)  # a kfunc or __ksym
    return Reference("data", symbol)


def render(listings: Sequence[ProgramListing] | ProgramListing) -> str:
    """Human-readable text: a header per program, ``; line @ file:N`` markers, indexed instructions.

    Jumps end in ``<index>`` of their target; calls and callback references in ``<subprogram>``.
    """
    if isinstance(listings, ProgramListing):
        listings = [listings]
    blocks = []
    for listing in listings:
        labels = {item.index: item.name for item in listing.lines if isinstance(item, SubprogramLabel)}
        width = max(4, len(str(max(listing.instruction_count - 1, 0))))
        noun = "instruction" if listing.instruction_count == 1 else "instructions"
        nops = listing.nops
        run = f" ({listing.instruction_count - nops} once the verifier removes {nops} nops)" if nops else ""
        out = [f"program {listing.name} ({listing.section}), {listing.instruction_count} {noun}{run}"]
        for item in listing.lines:
            if isinstance(item, SourceLine):
                out.append(f"; {item.text.strip()} @ {os.path.basename(item.file_name)}:{item.line}")
            elif isinstance(item, SubprogramLabel):
                out.append(f"<{item.name}>:")
            else:
                text = item.text
                label = labels.get(item.target) if item.target is not None else None
                if label is not None and item.raw[0] == _JMP | _CALL:
                    text += f" <{label}>"
                elif is_nop(item.raw):
                    text += "  ; nop"
                elif item.target is not None and not (label is not None and item.raw[0] == LD_IMM64):
                    text += f" <{item.target}>"  # (an ld_imm64 of a subprogram already says func[name])
                out.append(f"{item.index:>{width}}: {text}")
        blocks.append("\n".join(out))
    return "\n\n".join(blocks) + "\n"

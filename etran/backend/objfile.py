"""Read a BPF ELF object back into plain data: programs, subprograms, maps, relocations, BTF line info.

The compiler hands the kernel a standard BPF ELF object (programs in sections such as ``xdp``,
static subprograms in ``.text``, BTF-defined maps in ``.maps``, ``.BTF`` and ``.BTF.ext`` carrying
func_info and line_info whose line text is the DSL source).  Humans read that object through
:mod:`etran.backend.disasm`; this module is the half that understands ELF and BTF and nothing about
instruction syntax, so the disassembler works on frozen dataclasses instead of pyelftools objects.

What "a program" means follows libbpf: every global function symbol in an executable section other
than ``.text`` is a program; functions in ``.text`` are subprograms, appended to each program that
reaches them, depth first in instruction order (``bpf_object__reloc_code``), so instruction indices
in a listing match the ones the verifier prints.  A function is reached through

* a BPF-to-BPF call (``call`` with ``src_reg`` 1): with a relocation the target is
  ``symbol value + (imm + 1) * 8`` in the symbol's section (libbpf's ``RELO_CALL``); without one the
  callee is in the caller's own section and ``imm`` is relative to the call;
* a 64-bit immediate load with a relocation against a function or ``.text`` (a callback for
  ``bpf_timer_set_callback`` or ``bpf_loop``; libbpf turns it into ``src_reg`` 4, PSEUDO_FUNC): the
  target is ``symbol value + imm`` bytes (``RELO_SUBPROG_ADDR``).

BTF layouts (``include/uapi/linux/btf.h``): the ``.BTF`` header is ``{u16 magic 0xeB9F, u8 version,
u8 flags, u32 hdr_len, u32 type_off, u32 type_len, u32 str_off, u32 str_len}``; ``.BTF.ext`` starts
``{u16 magic, u8 version, u8 flags, u32 hdr_len, u32 func_info_off, u32 func_info_len,
u32 line_info_off, u32 line_info_len, ...}`` and each info block is ``u32 rec_size`` followed by
``{u32 sec_name_off, u32 num_info, record * num_info}`` groups.  Instruction offsets in those records
are byte offsets within the ELF section, as in the object file (libbpf divides them by 8 later).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import Section, SymbolTableSection

__all__ = [
    "FuncInfo",
    "FunctionCode",
    "LineInfo",
    "ObjectFile",
    "ObjectFileError",
    "ProgramCode",
    "read_object",
    "split_instructions",
]

INSN_SIZE = 8
LD_IMM64 = 0x18  # BPF_LD | BPF_IMM | BPF_DW: the only instruction that takes two 8-byte slots
_CALL = 0x85  # BPF_JMP | BPF_CALL
_PSEUDO_CALL = 1
_PSEUDO_FUNC = 4
_SHF_EXECINSTR = 0x4
_BTF_MAGIC = 0xEB9F
_FUNC_LINKAGE = {0: "static", 1: "global", 2: "extern"}
_BTF_KIND_FUNC = 12
# Bytes that follow the 12-byte common btf_type header, per kind: (fixed, per vlen member).
_BTF_TRAILER: dict[int, tuple[int, int]] = {
    1: (4, 0),  # INT
    3: (12, 0),  # ARRAY
    4: (0, 12),  # STRUCT
    5: (0, 12),  # UNION
    6: (0, 8),  # ENUM
    13: (0, 8),  # FUNC_PROTO
    14: (4, 0),  # VAR
    15: (0, 12),  # DATASEC
    17: (4, 0),  # DECL_TAG
    19: (0, 12),  # ENUM64
}  # PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG have no trailer


class ObjectFileError(ValueError):
    """The bytes are not a BPF ELF object this module can read."""


@dataclass(frozen=True, slots=True)
class LineInfo:
    """One ``.BTF.ext`` line_info record: the source position of the instruction at ``insn_offset``."""

    insn_offset: int  # bytes from the start of the ELF section
    file_name: str
    line: int
    column: int
    line_text: str


@dataclass(frozen=True, slots=True)
class FuncInfo:
    """One ``.BTF.ext`` func_info record: a function starts at ``insn_offset``."""

    insn_offset: int  # bytes from the start of the ELF section
    type_id: int
    name: str  # of the BTF FUNC type
    linkage: str  # "static", "global" or "extern" (BTF FUNC vlen)


@dataclass(frozen=True, slots=True)
class FunctionCode:
    """The code of one function symbol.

    ``instructions`` holds one ``bytes`` per instruction: 8 bytes, or 16 for an ld_imm64 pair.
    ``calls`` maps the byte offset of a call or ld_imm64 within this function to the name of the
    function it calls or references, for the references this module could resolve.
    """

    name: str
    section: str
    offset: int  # bytes from the start of the section
    instructions: list[bytes]
    calls: dict[int, str]

    @property
    def slot_count(self) -> int:
        """Instruction slots as the kernel counts them (insn_cnt): ld_imm64 counts 2."""
        return sum(len(insn) for insn in self.instructions) // INSN_SIZE


@dataclass(frozen=True, slots=True)
class ProgramCode(FunctionCode):
    """A program (global function outside ``.text``) and the subprograms it reaches.

    ``subprograms`` lists the functions reached through calls and callback references, transitively,
    in the order libbpf appends them after the program's own instructions.  ``slot_count`` counts
    the program alone.
    """

    subprograms: list[FunctionCode]


@dataclass(frozen=True, slots=True)
class ObjectFile:
    """Everything a disassembly needs from one BPF ELF object.

    ``relocations`` maps a section name to ``{byte offset in that section: symbol name}``; a
    relocation against a section symbol (``.text``, ``.rodata``) carries the section's name.
    ``line_info`` and ``func_info`` are keyed by section name, records in file order.  ``externs``
    are the undefined symbols relocations name: kfuncs and ``__ksym`` variables libbpf resolves.
    """

    programs: list[ProgramCode]
    maps: list[str]
    relocations: dict[str, dict[int, str]]
    line_info: dict[str, list[LineInfo]]
    func_info: dict[str, list[FuncInfo]]
    externs: list[str] = field(default_factory=list)
    little_endian: bool = True

    def program(self, name: str) -> ProgramCode:
        """The program called ``name``; ``KeyError`` naming the programs there are otherwise."""
        for program in self.programs:
            if program.name == name:
                return program
        known = ", ".join(p.name for p in self.programs) or "none"
        raise KeyError(f"no program {name!r} in the object (programs: {known})")


def split_instructions(code: bytes) -> list[bytes]:
    """Cut code into instructions: 8 bytes each, 16 for ld_imm64 (a truncated pair stays 8).

    The opcode is byte 0 in either byte order, so this works for bpfel and bpfeb alike.
    """
    out: list[bytes] = []
    pos = 0
    while pos + INSN_SIZE <= len(code):
        width = 2 * INSN_SIZE if code[pos] == LD_IMM64 and pos + 2 * INSN_SIZE <= len(code) else INSN_SIZE
        out.append(code[pos : pos + width])
        pos += width
    return out


def read_object(data: bytes) -> ObjectFile:
    """Parse a BPF ELF object; raise :class:`ObjectFileError` if it is not one."""
    try:
        elf = ELFFile(io.BytesIO(data))
        if elf["e_machine"] != "EM_BPF":
            raise ObjectFileError(f"read object: machine is {elf['e_machine']}, not EM_BPF")
        return _Reader(elf).read()
    except (ELFError, struct.error) as err:
        raise ObjectFileError(f"read object: {err}") from err


@dataclass(frozen=True, slots=True)
class _Symbol:
    name: str
    section: str | None  # None when undefined (an extern)
    value: int
    size: int
    kind: str  # STT_FUNC, STT_SECTION, STT_OBJECT, ...
    binding: str  # STB_GLOBAL, STB_LOCAL, STB_WEAK


@dataclass(slots=True)
class _Function:
    """A function symbol's extent while the reader resolves references between functions."""

    symbol: _Symbol
    code: bytes
    calls: dict[int, str]


class _Reader:
    """One pass over an ELFFile; the public result is built by :meth:`read`."""

    def __init__(self, elf: ELFFile) -> None:
        self.elf = elf
        self.little = bool(elf.little_endian)
        self.end = "<" if self.little else ">"
        self.sections: list[Section] = list(elf.iter_sections())
        self.symbols: list[_Symbol] = self._symbols()
        self.relocs: dict[str, dict[int, _Symbol]] = self._relocations()

    def read(self) -> ObjectFile:
        functions = self._functions()
        by_start = {(f.symbol.section, f.symbol.value): f for f in functions}
        programs = []
        for fn in functions:
            sym = fn.symbol
            if sym.section == ".text" or sym.binding not in ("STB_GLOBAL", "STB_WEAK"):
                continue
            reached = self._reach(fn, by_start)
            programs.append(ProgramCode(sym.name, sym.section or "", sym.value, split_instructions(fn.code),
                                        dict(fn.calls), [self._code(sub) for sub in reached]))
        maps = [s.name for s in sorted(self.symbols, key=lambda s: s.value) if s.section == ".maps"
                and s.kind != "STT_SECTION"]
        relocations = {sec: {off: s.name for off, s in sorted(rel.items())} for sec, rel in self.relocs.items()}
        externs = sorted({s.name for rel in self.relocs.values() for s in rel.values() if s.section is None})
        func_info, line_info = self._btf_ext()
        return ObjectFile(programs, maps, relocations, line_info, func_info, externs, self.little)

    # ---- ELF -----------------------------------------------------------------------------------

    def _symbols(self) -> list[_Symbol]:
        out: list[_Symbol] = []
        for table in self.sections:
            if isinstance(table, SymbolTableSection):
                out.extend(self._symbol(sym) for sym in table.iter_symbols())
        return out

    def _symbol(self, sym: Any) -> _Symbol:
        shndx = sym["st_shndx"]
        section = self.sections[shndx].name if isinstance(shndx, int) and shndx < len(self.sections) else None
        kind = str(sym["st_info"]["type"])
        name = str(sym.name) or (section if kind == "STT_SECTION" and section else "")
        return _Symbol(name, section, int(sym["st_value"]), int(sym["st_size"]), kind, str(sym["st_info"]["bind"]))

    def _relocations(self) -> dict[str, dict[int, _Symbol]]:
        out: dict[str, dict[int, _Symbol]] = {}
        for rel in self.sections:
            if not isinstance(rel, RelocationSection):
                continue
            target = self.sections[rel["sh_info"]]
            if not target["sh_flags"] & _SHF_EXECINSTR:
                continue  # .rel.BTF, .rel.debug_*: nothing a reader of code needs
            table = self.sections[rel["sh_link"]]
            assert isinstance(table, SymbolTableSection)
            entries = out.setdefault(target.name, {})
            for entry in rel.iter_relocations():
                entries[int(entry["r_offset"])] = self._symbol(table.get_symbol(entry["r_info_sym"]))
        return out

    def _functions(self) -> list[_Function]:
        """Function symbols of executable sections, in section order; size 0 extends to the next one."""
        out: list[_Function] = []
        for section in self.sections:
            if not section["sh_flags"] & _SHF_EXECINSTR or section["sh_type"] != "SHT_PROGBITS":
                continue
            data = section.data()
            syms = sorted((s for s in self.symbols if s.kind == "STT_FUNC" and s.section == section.name),
                          key=lambda s: s.value)
            for i, sym in enumerate(syms):
                end = sym.value + sym.size if sym.size else (syms[i + 1].value if i + 1 < len(syms) else len(data))
                out.append(_Function(sym, data[sym.value:end], {}))
        return out

    def _code(self, fn: _Function) -> FunctionCode:
        sym = fn.symbol
        return FunctionCode(sym.name, sym.section or "", sym.value, split_instructions(fn.code), dict(fn.calls))

    # ---- call graph ------------------------------------------------------------------------------

    def _reach(self, root: _Function, by_start: dict[tuple[str | None, int], _Function]) -> list[_Function]:
        """Functions reached from ``root``, depth first in instruction order, like libbpf appends them."""
        appended: list[_Function] = []
        seen = {id(root)}

        def walk(fn: _Function) -> None:
            pos = 0
            for insn in split_instructions(fn.code):
                target = self._target(fn, pos, insn)
                callee = by_start.get(target) if target else None
                if callee is not None:
                    fn.calls[pos] = callee.symbol.name
                    if id(callee) not in seen:
                        seen.add(id(callee))
                        appended.append(callee)
                        walk(callee)
                pos += len(insn)

        walk(root)
        return appended

    def _target(self, fn: _Function, pos: int, insn: bytes) -> tuple[str | None, int] | None:
        """(section, byte offset) of the function an instruction calls or references, if any."""
        code, regs = insn[0], insn[1]
        src = (regs >> 4) if self.little else (regs & 0xF)
        (imm,) = struct.unpack_from(self.end + "i", insn, 4)
        where = fn.symbol.value + pos
        sym = self.relocs.get(fn.symbol.section or "", {}).get(where)
        if code == _CALL and src == _PSEUDO_CALL:
            if sym is None:
                return fn.symbol.section, where + (imm + 1) * INSN_SIZE
            return sym.section, sym.value + (imm + 1) * INSN_SIZE
        if code == LD_IMM64:
            if sym is not None and sym.kind in ("STT_FUNC", "STT_SECTION") and self._executable(sym.section):
                return sym.section, sym.value + imm
            if sym is None and src == _PSEUDO_FUNC:
                return fn.symbol.section, where + (imm + 1) * INSN_SIZE
        return None

    def _executable(self, name: str | None) -> bool:
        return any(s.name == name and s["sh_flags"] & _SHF_EXECINSTR for s in self.sections)

    # ---- BTF -------------------------------------------------------------------------------------

    def _btf_ext(self) -> tuple[dict[str, list[FuncInfo]], dict[str, list[LineInfo]]]:
        btf_sec = self.elf.get_section_by_name(".BTF")
        ext_sec = self.elf.get_section_by_name(".BTF.ext")
        if btf_sec is None or ext_sec is None:
            return {}, {}
        btf = _Btf(btf_sec.data(), self.end)
        ext = ext_sec.data()
        magic, _version, _flags, hdr_len = struct.unpack_from(self.end + "HBBI", ext, 0)
        if magic != _BTF_MAGIC:
            raise ObjectFileError(f"read .BTF.ext: bad magic {magic:#x}")
        fi_off, fi_len, li_off, li_len = struct.unpack_from(self.end + "IIII", ext, 8)
        func_info: dict[str, list[FuncInfo]] = {}
        for sec, rec in self._info_records(ext, hdr_len + fi_off, fi_len, btf):
            insn_off, type_id = struct.unpack_from(self.end + "II", rec, 0)
            name, linkage = btf.func(type_id)
            func_info.setdefault(sec, []).append(FuncInfo(insn_off, type_id, name, linkage))
        line_info: dict[str, list[LineInfo]] = {}
        for sec, rec in self._info_records(ext, hdr_len + li_off, li_len, btf):
            insn_off, file_off, line_off, line_col = struct.unpack_from(self.end + "IIII", rec, 0)
            line_info.setdefault(sec, []).append(
                LineInfo(insn_off, btf.string(file_off), line_col >> 10, line_col & 0x3FF, btf.string(line_off))
            )
        return func_info, line_info

    def _info_records(self, ext: bytes, start: int, length: int, btf: _Btf) -> list[tuple[str, bytes]]:
        """(section name, record bytes) for every record of one .BTF.ext info block."""
        if length == 0:
            return []
        (rec_size,) = struct.unpack_from(self.end + "I", ext, start)
        out: list[tuple[str, bytes]] = []
        pos, end = start + 4, start + length
        while pos < end:
            name_off, count = struct.unpack_from(self.end + "II", ext, pos)
            pos += 8
            section = btf.string(name_off)
            for _ in range(count):
                out.append((section, ext[pos : pos + rec_size]))
                pos += rec_size
        return out


class _Btf:
    """Just enough of .BTF: the string table and, per type id, the name and kind of the type."""

    def __init__(self, data: bytes, end: str) -> None:
        magic, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
            end + "HBBIIIII", data, 0
        )
        if magic != _BTF_MAGIC:
            raise ObjectFileError(f"read .BTF: bad magic {magic:#x}")
        self.strings = data[hdr_len + str_off : hdr_len + str_off + str_len]
        self.types: list[tuple[int, int, int]] = [(0, 0, 0)]  # (name_off, kind, vlen); id 0 is void
        pos, stop = hdr_len + type_off, hdr_len + type_off + type_len
        while pos + 12 <= stop:
            name_off, info = struct.unpack_from(end + "II", data, pos)
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            self.types.append((name_off, kind, vlen))
            fixed, per_member = _BTF_TRAILER.get(kind, (0, 0))
            pos += 12 + fixed + per_member * vlen

    def string(self, offset: int) -> str:
        if offset >= len(self.strings):
            return ""
        stop = self.strings.find(b"\0", offset)
        return self.strings[offset : stop if stop >= 0 else len(self.strings)].decode("utf-8", "replace")

    def func(self, type_id: int) -> tuple[str, str]:
        """Name and linkage of a FUNC type; ("", "") for an id that is not one."""
        if not 0 < type_id < len(self.types):
            return "", ""
        name_off, kind, vlen = self.types[type_id]
        if kind != _BTF_KIND_FUNC:
            return self.string(name_off), ""
        return self.string(name_off), _FUNC_LINKAGE.get(vlen, str(vlen))

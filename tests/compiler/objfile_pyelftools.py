"""The reader `etran.backend.objfile` had before it read ELF itself: pyelftools, for reference.

`test_objfile_reader.py` compares the two on every object the tests build.  This is the old module's
reading code as it was, on the same public dataclasses.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import Section, SymbolTableSection

from etran.backend.objfile import (
    _BTF_MAGIC,
    _CALL,
    _PSEUDO_CALL,
    _PSEUDO_FUNC,
    _SHF_EXECINSTR,
    INSN_SIZE,
    LD_IMM64,
    FuncInfo,
    FunctionCode,
    LineInfo,
    ObjectFile,
    ObjectFileError,
    ProgramCode,
    _Btf,
    split_instructions,
)


def read_object_pyelftools(data: bytes) -> ObjectFile:
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

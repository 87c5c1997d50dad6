"""Read a BPF ELF object back into plain data: programs, subprograms, maps, relocations, BTF line info.

The compiler hands the kernel a standard BPF ELF object (programs in sections such as ``xdp``,
static subprograms in ``.text``, BTF-defined maps in ``.maps``, ``.BTF`` and ``.BTF.ext`` carrying
func_info and line_info whose line text is the DSL source).  Humans read that object through
:mod:`etran.backend.disasm`; this module is the half that understands ELF and BTF and nothing about
instruction syntax, so the disassembler works on frozen dataclasses.  It reads ELF with :mod:`struct`
(pyelftools, which it used before, cost 15 ms to import on every `etran build`).

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

import struct
from dataclasses import dataclass, field

__all__ = [
    "CodeExtent",
    "FuncInfo",
    "FunctionCode",
    "LineInfo",
    "ObjectFile",
    "ObjectFileError",
    "ProgramCode",
    "function_extents",
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
        elf = _Elf(bytes(data))
        if elf.machine != _EM_BPF:
            machine = _MACHINES.get(elf.machine, str(elf.machine))
            raise ObjectFileError(f"read object: machine is {machine}, not EM_BPF")
        return _Reader(elf).read()
    except (_ElfError, struct.error, IndexError) as err:
        raise ObjectFileError(f"read object: {err}") from err


@dataclass(frozen=True, slots=True)
class CodeExtent:
    """Where one function's code is in the ELF file's bytes, for a pass that rewrites it in place."""

    file_offset: int     # of the function's first instruction in the file
    size: int            # bytes
    relocated: frozenset[int]  # byte offsets within the function that a relocation names
    is_program: bool     # a program (its r1 is the context on entry), not a subprogram


def function_extents(data: bytes) -> list[CodeExtent]:
    """Every function of an object's executable sections (uncompressed ones), with its relocations."""
    try:
        reader = _Reader(_Elf(bytes(data)))
    except (_ElfError, struct.error, IndexError) as err:
        raise ObjectFileError(f"read object: {err}") from err
    out: list[CodeExtent] = []
    for fn in reader._functions():
        sym = fn.symbol
        if fn.file_offset is None:
            continue
        relocs = reader.relocs.get(sym.section or "", {})
        end = sym.value + len(fn.code)
        out.append(CodeExtent(fn.file_offset, len(fn.code),
                              frozenset(off - sym.value for off in relocs if sym.value <= off < end),
                              sym.section != ".text" and sym.binding in (_STB_GLOBAL, _STB_WEAK)))
    return out


# ---- ELF -------------------------------------------------------------------------------------------
# What pyelftools did for this module, as ELFFile reads it: sections and their names, symbol tables,
# REL and RELA relocations, for ELF32 and ELF64 in either byte order.

_EM_BPF = 247
_MACHINES = {0: "EM_NONE", 3: "EM_386", 8: "EM_MIPS", 20: "EM_PPC", 21: "EM_PPC64", 22: "EM_S390",
             40: "EM_ARM", 43: "EM_SPARCV9", 62: "EM_X86_64", 183: "EM_AARCH64", 243: "EM_RISCV",
             258: "EM_LOONGARCH"}
_SHT_PROGBITS, _SHT_SYMTAB, _SHT_STRTAB, _SHT_RELA, _SHT_NOBITS, _SHT_REL, _SHT_DYNSYM = 1, 2, 3, 4, 8, 9, 11
_SHT_SUNW_LDYNSYM = 0x6FFFFFF3
_SYMBOL_TABLES = (_SHT_SYMTAB, _SHT_DYNSYM, _SHT_SUNW_LDYNSYM)
_SHN_UNDEF, _SHN_ABS, _SHN_COMMON, _SHN_XINDEX = 0, 0xFFF1, 0xFFF2, 0xFFFF
_SHF_COMPRESSED = 0x800
_ELFCOMPRESS_ZLIB = 1
_COMPRESSION_NAMES = {0x60000000: "ELFCOMPRESS_LOOS", 0x6FFFFFFF: "ELFCOMPRESS_HIOS",
                      0x70000000: "ELFCOMPRESS_LOPROC", 0x7FFFFFFF: "ELFCOMPRESS_HIPROC"}
_STT_FUNC, _STT_SECTION = 2, 3
_STB_GLOBAL, _STB_WEAK = 1, 2


class _ElfError(Exception):
    """The bytes are not an ELF file as the format describes it."""


class _Section:
    """One section header, its name, and its contents on demand."""

    __slots__ = ("elf", "entsize", "flags", "index", "info", "link", "name", "offset", "size", "type")

    def __init__(self, elf: _Elf, index: int, name: str, fields: tuple[int, ...]) -> None:
        self.elf = elf
        self.index = index
        self.name = name
        _name, self.type, self.flags, _addr, self.offset, self.size, self.link, self.info, _align, \
            self.entsize = fields

    def data(self) -> bytes:
        if not self.flags & _SHF_COMPRESSED:
            if self.type == _SHT_NOBITS:
                return self._zeros(self.size)
            return self.elf.data[self.offset : self.offset + self.size]
        kind, size = self.elf.compression(self)
        if self.type == _SHT_NOBITS:
            return self._zeros(size)
        if kind != _ELFCOMPRESS_ZLIB:
            name = _COMPRESSION_NAMES.get(kind)
            raise _ElfError(f"Unknown compression type: {kind:#0x}" if name is None
                            else f"Unknown compression type: {name!r}")
        import zlib
        start = self.offset + (24 if self.elf.is64 else 12)
        try:
            out = zlib.decompressobj().decompress(self.elf.data[start : self.offset + self.size], size)
        except zlib.error as err:
            raise _ElfError(f"section {self.name!r}: {err}") from None
        if len(out) != size:
            raise _ElfError(f"Decompressed data is {len(out)} bytes long, should be {size} bytes long")
        return out

    def _zeros(self, size: int) -> bytes:
        # No section this module reads is NOBITS in an object; a damaged size must not allocate
        # gigabytes (pyelftools did).
        if size > len(self.elf.data):
            raise _ElfError(f"section {self.name!r}: {size} bytes of NOBITS, larger than the file")
        return b"\0" * size


class _Elf:
    """The header and section table of an ELF file (the parts pyelftools' ELFFile gave us)."""

    def __init__(self, data: bytes) -> None:
        if data[:4] != b"\x7fELF":
            raise _ElfError("Magic number does not match")
        if len(data) < 6 or data[4] not in (1, 2):
            raise _ElfError(f"Invalid EI_CLASS {data[4] if len(data) > 4 else None}")
        if data[5] not in (1, 2):
            raise _ElfError(f"Invalid EI_DATA {data[5]}")
        self.data = data
        self.is64 = data[4] == 2
        self.little_endian = data[5] == 1
        end = "<" if self.little_endian else ">"
        self.end = end
        header = struct.unpack_from(end + ("HHIQQQIHHHHHH" if self.is64 else "HHIIIIIHHHHHH"), data, 16)
        self.machine = header[1]
        shoff, shentsize, shnum, shstrndx = header[5], header[10], header[11], header[12]
        self._section_header = struct.Struct(end + ("IIQQQQIIQQ" if self.is64 else "IIIIIIIIII"))
        self._symbol = struct.Struct(end + ("IBBHQQ" if self.is64 else "IIIBBH"))
        self._rel = struct.Struct(end + ("QQ" if self.is64 else "II"))
        self._rela = struct.Struct(end + ("QQq" if self.is64 else "IIi"))
        headers: list[tuple[int, ...]] = []
        if shoff:
            first = self._section_header.unpack_from(data, shoff)
            count = first[5] if shnum == 0 else shnum  # extended numbering: sh_size of section 0
            headers = [first] + [self._section_header.unpack_from(data, shoff + i * shentsize)
                                 for i in range(1, count)]
            if shstrndx == _SHN_XINDEX:
                shstrndx = first[6]  # sh_link of section 0
        names_at = headers[shstrndx][4] if headers else 0
        self.sections = [_Section(self, i, self.string(names_at, h[0]), h) for i, h in enumerate(headers)]
        self._by_name = {s.name: s for s in self.sections}  # the last of a name, as pyelftools
        for section in self.sections:  # what pyelftools checks of every section it lists
            if section.flags & _SHF_COMPRESSED:
                self.compression(section)
            if section.type in (_SHT_REL, _SHT_RELA):
                size = (self._rela if section.type == _SHT_RELA else self._rel).size
                if section.entsize != size:
                    kind = "SHT_RELA" if section.type == _SHT_RELA else "SHT_REL"
                    raise _ElfError(f"Expected sh_entsize of {kind} section to be {size}")
            elif section.type in _SYMBOL_TABLES:
                if section.entsize <= 0:
                    raise _ElfError(f"Expected entry size of section {section.name!r} to be > 0")
                if section.size % section.entsize:
                    raise _ElfError("Expected section size to be a multiple of entry size in "
                                    f"section {section.name!r}")
                if not 0 <= section.link < len(self.sections) \
                        or self.sections[section.link].type != _SHT_STRTAB:
                    raise _ElfError(f"Section {section.name!r} does not link to a string table")

    def compression(self, section: _Section) -> tuple[int, int]:
        """(ch_type, ch_size) of a compressed section's header."""
        if self.is64:
            kind, _reserved, size, _align = struct.unpack_from(self.end + "IIQQ", self.data, section.offset)
        else:
            kind, size, _align = struct.unpack_from(self.end + "III", self.data, section.offset)
        return kind, size

    def string(self, table_offset: int, offset: int) -> str:
        """A NUL-terminated string at `offset` in the string table that starts at `table_offset`."""
        start = table_offset + offset
        stop = self.data.find(b"\0", start)
        raw = self.data[start : stop if stop >= 0 else len(self.data)]
        return raw.decode("utf-8", errors="replace") if raw else ""

    def section_by_name(self, name: str) -> _Section | None:
        return self._by_name.get(name)

    def symbol(self, table: _Section, n: int) -> tuple[str, int, int, int, int, int]:
        """(name, st_info type, st_info bind, st_shndx, st_value, st_size) of symbol `n` of `table`."""
        at = table.offset + n * table.entsize
        if self.is64:
            name, info, _other, shndx, value, size = self._symbol.unpack_from(self.data, at)
        else:
            name, value, size, info, _other, shndx = self._symbol.unpack_from(self.data, at)
        return self.string(self.sections[table.link].offset, name), info & 0xF, info >> 4, shndx, value, size

    def symbols(self, table: _Section) -> list[tuple[str, int, int, int, int, int]]:
        return [self.symbol(table, n) for n in range(table.size // table.entsize)]

    def relocations(self, section: _Section) -> list[tuple[int, int]]:
        """(r_offset, symbol index) of every entry of a REL or RELA section."""
        entry = self._rela if section.type == _SHT_RELA else self._rel
        shift = 32 if self.is64 else 8
        return [(fields[0], fields[1] >> shift)
                for fields in (entry.unpack_from(self.data, section.offset + i * entry.size)
                               for i in range(section.size // entry.size))]


class _Symbol:
    """One symbol table entry (a plain class: a dataclass costs 0.3 ms to create at import)."""

    __slots__ = ("binding", "kind", "name", "section", "size", "value")

    def __init__(self, name: str, section: str | None, value: int, size: int, kind: int,
                 binding: int) -> None:
        self.name = name
        self.section = section  # None when undefined (an extern)
        self.value = value
        self.size = size
        self.kind = kind  # st_info type: _STT_FUNC, _STT_SECTION, ...
        self.binding = binding  # st_info bind: _STB_GLOBAL, _STB_WEAK, local


class _Function:
    """A function symbol's extent while the reader resolves references between functions."""

    __slots__ = ("calls", "code", "file_offset", "symbol")

    def __init__(self, symbol: _Symbol, code: bytes, calls: dict[int, str],
                 file_offset: int | None = None) -> None:
        self.symbol = symbol
        self.code = code
        self.calls = calls
        self.file_offset = file_offset  # of the code in the file; None in a compressed section


class _Reader:
    """One pass over an ELF file; the public result is built by :meth:`read`."""

    def __init__(self, elf: _Elf) -> None:
        self.elf = elf
        self.little = elf.little_endian
        self.end = "<" if self.little else ">"
        self.sections: list[_Section] = elf.sections
        self.symbols: list[_Symbol] = self._symbols()
        self.relocs: dict[str, dict[int, _Symbol]] = self._relocations()

    def read(self) -> ObjectFile:
        functions = self._functions()
        by_start = {(f.symbol.section, f.symbol.value): f for f in functions}
        programs = []
        for fn in functions:
            sym = fn.symbol
            if sym.section == ".text" or sym.binding not in (_STB_GLOBAL, _STB_WEAK):
                continue
            reached = self._reach(fn, by_start)
            programs.append(ProgramCode(sym.name, sym.section or "", sym.value, split_instructions(fn.code),
                                        dict(fn.calls), [self._code(sub) for sub in reached]))
        maps = [s.name for s in sorted(self.symbols, key=lambda s: s.value) if s.section == ".maps"
                and s.kind != _STT_SECTION]
        relocations = {sec: {off: s.name for off, s in sorted(rel.items())} for sec, rel in self.relocs.items()}
        externs = sorted({s.name for rel in self.relocs.values() for s in rel.values() if s.section is None})
        func_info, line_info = self._btf_ext()
        return ObjectFile(programs, maps, relocations, line_info, func_info, externs, self.little)

    # ---- ELF -----------------------------------------------------------------------------------

    def _symbols(self) -> list[_Symbol]:
        out: list[_Symbol] = []
        for table in self.sections:
            if table.type in _SYMBOL_TABLES:
                out.extend(self._symbol(sym) for sym in self.elf.symbols(table))
        return out

    def _symbol(self, sym: tuple[str, int, int, int, int, int]) -> _Symbol:
        name, kind, binding, shndx, value, size = sym
        section = None if shndx in (_SHN_UNDEF, _SHN_ABS, _SHN_COMMON) or shndx >= len(self.sections) \
            else self.sections[shndx].name
        name = name or (section if kind == _STT_SECTION and section else "")
        return _Symbol(name, section, value, size, kind, binding)

    def _relocations(self) -> dict[str, dict[int, _Symbol]]:
        out: dict[str, dict[int, _Symbol]] = {}
        for rel in self.sections:
            if rel.type not in (_SHT_REL, _SHT_RELA):
                continue
            target = self.sections[rel.info]
            if not target.flags & _SHF_EXECINSTR:
                continue  # .rel.BTF, .rel.debug_*: nothing a reader of code needs
            if not 0 <= rel.link < len(self.sections) or self.sections[rel.link].type not in _SYMBOL_TABLES:
                raise _ElfError(f"Section {rel.name!r} does not link to a symbol table")
            table = self.sections[rel.link]
            entries = out.setdefault(target.name, {})
            for offset, index in self.elf.relocations(rel):
                entries[offset] = self._symbol(self.elf.symbol(table, index))
        return out

    def _functions(self) -> list[_Function]:
        """Function symbols of executable sections, in section order; size 0 extends to the next one."""
        out: list[_Function] = []
        for section in self.sections:
            if not section.flags & _SHF_EXECINSTR or section.type != _SHT_PROGBITS:
                continue
            data = section.data()
            syms = sorted((s for s in self.symbols if s.kind == _STT_FUNC and s.section == section.name),
                          key=lambda s: s.value)
            for i, sym in enumerate(syms):
                end = sym.value + sym.size if sym.size else (syms[i + 1].value if i + 1 < len(syms) else len(data))
                at = None if section.flags & _SHF_COMPRESSED else section.offset + sym.value
                out.append(_Function(sym, data[sym.value:end], {}, at))
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
            if sym is not None and sym.kind in (_STT_FUNC, _STT_SECTION) and self._executable(sym.section):
                return sym.section, sym.value + imm
            if sym is None and src == _PSEUDO_FUNC:
                return fn.symbol.section, where + (imm + 1) * INSN_SIZE
        return None

    def _executable(self, name: str | None) -> bool:
        return any(s.name == name and s.flags & _SHF_EXECINSTR for s in self.sections)

    # ---- BTF -------------------------------------------------------------------------------------

    def _btf_ext(self) -> tuple[dict[str, list[FuncInfo]], dict[str, list[LineInfo]]]:
        btf_sec = self.elf.section_by_name(".BTF")
        ext_sec = self.elf.section_by_name(".BTF.ext")
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
            if count and (rec_size == 0 or pos + count * rec_size > end):
                # a damaged count would otherwise make millions of empty records
                raise ObjectFileError(f"read .BTF.ext: {count} records of {rec_size} bytes run "
                                      "past their block")
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

"""Test-only: build small BPF ELF objects from textual LLVM IR, without the etran compiler.

The runtime tests need real objects (programs, BTF-defined maps) to load into the kernel while
the compiler is written in parallel. A test writes plain IR function definitions; this module
adds what libbpf needs around them (see research/kernel-probe.md section 9):

* debug metadata, so LLVM emits ``.BTF``/``.BTF.ext``: a ``DISubprogram`` with named
  parameters for every ``define`` (``internal`` ones become static ``.text`` subprograms);
* a libbpf BTF-defined map per :class:`MapDef` in section ``.maps``, typed as
  ``struct { int (*type)[T]; int (*max_entries)[N]; K *key; V *value; }``;
* a ``license`` section.

Then it runs the O2 pipeline and emits an object for ``bpfel``, CPU ``v3``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import llvmlite.binding as llvm  # type: ignore[import-untyped]

from etran.abi import (  # noqa: F401
    MAP_LOOKUP_ELEM,
    MAP_PUSH_ELEM,
    MAP_TYPES,
    MAP_UPDATE_ELEM,
    RINGBUF_OUTPUT,
    XDP_ABORTED,
    XDP_ADJUST_HEAD,
    XDP_ADJUST_TAIL,
    XDP_DROP,
    XDP_PASS,
    XDP_TX,
)

llvm.initialize_all_targets()
llvm.initialize_all_asmprinters()

# map types
HASH, ARRAY, PERCPU_ARRAY, LRU_HASH, QUEUE, RINGBUF = (
    MAP_TYPES[name] for name in ("hash", "array", "percpu_array", "lru_hash", "queue", "ringbuf"))


@dataclass(frozen=True, slots=True)
class MapDef:
    """A BTF-defined map; a zero key/value size leaves that member out (queue, ringbuf)."""

    name: str
    map_type: int
    max_entries: int
    key_size: int = 0
    value_size: int = 0


_HEADER = '''target datalayout = "e-m:e-p:64:64-i64:64-i128:128-n32:64-S128"
target triple = "bpfel"
'''
_DEFINE = re.compile(r"^define\s+(?P<internal>internal\s+)?(?P<ret>\w+)\s+@(?P<name>\w+)"
                     r"\((?P<params>[^)]*)\)(?P<attrs>[^{]*)\{")
_DIRECT_CALL = re.compile(r"\bcall\b[^@]*@\w+\(")


class _Metadata:
    """Numbered metadata nodes, emitted after the IR body."""

    def __init__(self) -> None:
        self.nodes: list[str] = []
        self.cache: dict[str, str] = {}

    def reserve(self) -> str:
        self.nodes.append("")
        return f"!{len(self.nodes) - 1}"

    def set(self, ref: str, text: str) -> str:
        self.nodes[int(ref[1:])] = text
        return ref

    def add(self, text: str) -> str:
        if text not in self.cache:
            self.cache[text] = self.set(self.reserve(), text)
        return self.cache[text]

    def render(self) -> str:
        return "\n".join(f"!{i} = {text}" for i, text in enumerate(self.nodes)) + "\n"


class _Builder:
    def __init__(self) -> None:
        self.md = _Metadata()
        self.file = self.md.add('!DIFile(filename: "test.ll", directory: "/tmp")')
        self.cu = self.md.reserve()
        self.int = self.md.add('!DIBasicType(name: "int", size: 32, encoding: DW_ATE_signed)')

    def basic(self, size: int) -> str:
        names = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int",
                 8: "unsigned long long"}
        if size in names:
            enc = "DW_ATE_unsigned_char" if size == 1 else "DW_ATE_unsigned"
            return self.md.add(f'!DIBasicType(name: "{names[size]}", size: {size * 8}, '
                               f"encoding: {enc})")
        return self.array(self.basic(1), 8, size)

    def array(self, elem: str, elem_bits: int, count: int) -> str:
        return self.md.add(f"!DICompositeType(tag: DW_TAG_array_type, baseType: {elem}, "
                           f"size: {elem_bits * count}, "
                           f"elements: !{{!DISubrange(count: {count})}})")

    def pointer(self, base: str) -> str:
        return self.md.add(f"!DIDerivedType(tag: DW_TAG_pointer_type, baseType: {base}, size: 64)")

    def struct(self, name: str | None, bits: int, members: list[tuple[str, str, int]]) -> str:
        ref = self.md.reserve()
        refs = [self.md.add(f'!DIDerivedType(tag: DW_TAG_member, name: "{n}", scope: {ref}, '
                            f"file: {self.file}, baseType: {t}, size: 64, offset: {off})")
                for n, t, off in members]
        label = f'name: "{name}", ' if name else ""
        return self.md.set(ref, f"distinct !DICompositeType(tag: DW_TAG_structure_type, {label}"
                                f"file: {self.file}, size: {bits}, "
                                f"elements: !{{{', '.join(refs)}}})")

    def map_global(self, spec: MapDef) -> tuple[str, str]:
        """(IR global definition, DIGlobalVariableExpression ref)."""
        members = [("type", self.pointer(self.array(self.int, 32, spec.map_type))),
                   ("max_entries", self.pointer(self.array(self.int, 32, spec.max_entries)))]
        if spec.key_size:
            members.append(("key", self.pointer(self.basic(spec.key_size))))
        if spec.value_size:
            members.append(("value", self.pointer(self.basic(spec.value_size))))
        st = self.struct(None, 64 * len(members), [(n, t, 64 * i) for i, (n, t) in
                                                   enumerate(members)])
        var = self.md.add(f'distinct !DIGlobalVariable(name: "{spec.name}", scope: {self.cu}, '
                          f"file: {self.file}, line: 1, type: {st}, isLocal: false, "
                          "isDefinition: true)")
        gve = self.md.add(f"!DIGlobalVariableExpression(var: {var}, expr: !DIExpression())")
        fields = ", ".join(["ptr"] * len(members))
        ir = (f'@{spec.name} = global {{ {fields} }} zeroinitializer, section ".maps", '
              f"align 8, !dbg {gve}")
        return ir, gve

    def ir_type(self, text: str) -> str:
        text = text.strip()
        if text == "ptr":
            xdp_md = self.struct("xdp_md", 192, [])
            return self.pointer(xdp_md)
        if text == "void":
            return "null"
        bits = int(text[1:])
        return self.int if bits == 32 else self.basic(bits // 8)

    def subprogram(self, name: str, ret: str, params: str, static: bool) -> str:
        sp = self.md.reserve()
        parsed = [p.split() for p in params.split(",") if p.strip()]
        types = [self.ir_type(ret)] + [self.ir_type(p[0]) for p in parsed]
        sub = self.md.add(f"!DISubroutineType(types: !{{{', '.join(types)}}})")
        args = [self.md.add(f'!DILocalVariable(name: "{p[-1].lstrip("%")}", arg: {i + 1}, '
                            f"scope: {sp}, file: {self.file}, line: 1, type: {types[i + 1]})")
                for i, p in enumerate(parsed)]
        flags = "DISPFlagDefinition | DISPFlagOptimized" + (" | DISPFlagLocalToUnit"
                                                            if static else "")
        return self.md.set(sp, f'distinct !DISubprogram(name: "{name}", scope: {self.file}, '
                               f"file: {self.file}, line: 1, type: {sub}, spFlags: {flags}, "
                               f"unit: {self.cu}, retainedNodes: !{{{', '.join(args)}}})")


def object_ir(body: str, maps: Sequence[MapDef] = (), license: str = "GPL") -> str:
    """The complete module text for ``body`` (function definitions) and ``maps``."""
    b = _Builder()
    globals_ir, gves = [], []
    for spec in maps:
        ir, gve = b.map_global(spec)
        globals_ir.append(ir)
        gves.append(gve)

    lines, scope = [], ""
    for line in body.splitlines():
        m = _DEFINE.match(line)
        if m:
            scope = b.subprogram(m["name"], m["ret"], m["params"], static=bool(m["internal"]))
            attrs = m["attrs"].rstrip()
            if "nounwind" not in attrs:  # function attributes come before `section`
                attrs = " nounwind" + attrs
            line = f"{line[:m.start('attrs')]}{attrs} !dbg {scope} {{{line[m.end():]}"
        elif _DIRECT_CALL.search(line) and "!dbg" not in line:
            # LLVM: "inlinable function call in a function with debug info must have a !dbg"
            line += f", !dbg !DILocation(line: 1, column: 1, scope: {scope})"
        lines.append(line)
    body = "\n".join(lines)
    lic = license.encode() + b"\0"
    used = ", ".join([f"ptr @{spec.name}" for spec in maps] + ["ptr @LICENSE"])
    b.md.set(b.cu, f"distinct !DICompileUnit(language: DW_LANG_C99, file: {b.file}, "
                   'producer: "etran-tests", isOptimized: true, runtimeVersion: 0, '
                   f"emissionKind: FullDebug, globals: !{{{', '.join(gves)}}})")
    flags = [b.md.add('!{i32 7, !"Dwarf Version", i32 5}'),
             b.md.add('!{i32 2, !"Debug Info Version", i32 3}')]
    return (_HEADER + "\n".join(globals_ir) + "\n"
            + f'@LICENSE = global [{len(lic)} x i8] c"{license}\\00", section "license", align 1\n'
            + f"@llvm.compiler.used = appending global [{len(maps) + 1} x ptr] [{used}], "
            + 'section "llvm.metadata"\n\n' + body + "\n"
            + f"!llvm.dbg.cu = !{{{b.cu}}}\n!llvm.module.flags = !{{{', '.join(flags)}}}\n"
            + b.md.render())


_MACHINE: list[llvm.TargetMachine] = []


def _target_machine() -> llvm.TargetMachine:
    if not _MACHINE:
        target = llvm.Target.from_triple("bpfel")
        _MACHINE.append(target.create_target_machine(cpu="v3", opt=2, reloc="static",
                                                     codemodel="small"))
    return _MACHINE[0]


def build_object(body: str, maps: Sequence[MapDef] = (), license: str = "GPL") -> bytes:
    """Compile ``body`` plus ``maps`` to a BPF ELF object (bytes) at -O2."""
    module = llvm.parse_assembly(object_ir(body, maps, license))
    module.verify()
    tm = _target_machine()
    builder = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=2))
    builder.getModulePassManager().run(module, builder)
    return bytes(tm.emit_object(module))


XDP_LOAD_BOUNDS = """
  %d32 = load i32, ptr %ctx, align 4
  %ep = getelementptr i8, ptr %ctx, i64 4
  %e32 = load i32, ptr %ep, align 4
  %d64 = zext i32 %d32 to i64
  %e64 = zext i32 %e32 to i64
  %data = inttoptr i64 %d64 to ptr
  %end = inttoptr i64 %e64 to ptr
"""
"""IR lines that load ``%data``/``%end`` from ``struct xdp_md *%ctx`` (data@0, data_end@4)."""


def xdp_return(value: int, name: str = "prog") -> str:
    """An XDP program that returns ``value``."""
    return f'define i32 @{name}(ptr %ctx) section "xdp" {{\n  ret i32 {value}\n}}\n'

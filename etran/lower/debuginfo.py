"""Debug information for the emitted module: what becomes .BTF and .BTF.ext.

LLVM's BPF backend turns DWARF-style metadata into BTF: struct types (so the
kernel sees `bpf_spin_lock` and `bpf_timer` fields and bpftool can print map
values), BTF-defined map declarations in `.maps`, FUNC records for every
program and callback, and a line_info record for every instruction. The
source text is embedded in each DIFile, so the verifier log quotes DSL lines
(`; c.cwnd += acked @ dctcp.py:58`) wherever the compiler ran.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import llvmlite.ir as ir
from llvmlite.ir import values as llvm_values

from etran.ir.types import (
    ArrayType,
    BeType,
    BoolType,
    IntType,
    MapType,
    SpinLockType,
    StructType,
    TimerType,
    Type,
)

# llvmlite hashes and compares metadata structurally. A DISubprogram lists its
# parameters (retainedNodes) and each parameter names the subprogram as its
# scope: structural hashing recurses forever on that cycle, which BTF needs
# for named parameters ("Invalid arg#1" otherwise). Distinct nodes are unique
# by definition, so identity semantics are exact for them.
_structural_eq = llvm_values.DIValue.__eq__
_structural_hash = llvm_values.DIValue.__hash__


def _di_hash(self: Any) -> int:
    return id(self) if self.is_distinct else _structural_hash(self)


def _di_eq(self: Any, other: object) -> bool:
    return (self is other) if self.is_distinct else _structural_eq(self, other)


llvm_values.DIValue.__hash__ = _di_hash
llvm_values.DIValue.__eq__ = _di_eq

T = ir.DIToken
DIValue = llvm_values.DIValue
MDValue = llvm_values.MDValue
_METADATA = ir.MetaDataType()
# marks a cache key's entry for a node operand, which counts by identity (`add_debug_info`)
_BY_IDENTITY = object()
_NODES = (DIValue, MDValue)  # by exact class: a subclass would be keyed as llvmlite keys it
_C_NAMES = {"u8": ("unsigned char", "DW_ATE_unsigned_char"), "u16": ("unsigned short", "DW_ATE_unsigned"),
            "u32": ("unsigned int", "DW_ATE_unsigned"), "u64": ("unsigned long long", "DW_ATE_unsigned"),
            "i8": ("signed char", "DW_ATE_signed_char"), "i16": ("short", "DW_ATE_signed"),
            "i32": ("int", "DW_ATE_signed"), "i64": ("long long", "DW_ATE_signed")}


class DebugInfo:
    """Builds the metadata of one module; one DIFile per source file."""

    def __init__(self, module: ir.Module, main_file: str, sources: dict[str, str]) -> None:
        self.m = module
        self.sources = sources
        self.files: dict[str, Any] = {}
        self.types: dict[int, Any] = {}
        self._nodes: dict[tuple[Any, ...], Any] = {}       # add_debug_info's
        self._tuples: dict[tuple[Any, ...], Any] = {}      # add_metadata's
        main = self.file(main_file)
        self.cu = self.add_debug_info("DICompileUnit", {
            "language": T("DW_LANG_C99"), "file": main, "producer": "etran",
            "isOptimized": True, "runtimeVersion": 0, "emissionKind": T("FullDebug"),
        }, is_distinct=True)
        self.globals: list[Any] = []
        module.add_named_metadata("llvm.module.flags", [ir.IntType(32)(7), "Dwarf Version", ir.IntType(32)(5)])
        module.add_named_metadata("llvm.module.flags", [ir.IntType(32)(2), "Debug Info Version", ir.IntType(32)(3)])

    def finish(self) -> None:
        """Attach the compile unit (with its map globals) once everything is declared."""
        ops = list(self.cu.operands)
        ops.append(("globals", self.add_metadata(self.globals)))
        self.cu.operands = tuple(ops)
        self.m.add_named_metadata("llvm.dbg.cu", self.cu)

    def file(self, name: str) -> Any:
        if name not in self.files:
            p = Path(name)
            ops: dict[str, Any] = {"filename": p.name, "directory": str(p.parent) if str(p.parent) != "." else ""}
            if name in self.sources:
                ops["source"] = self.sources[name]
            self.files[name] = self.add_debug_info("DIFile", ops)
        return self.files[name]

    # ---------------------------------------------------------------- nodes
    def add_debug_info(self, kind: str, operands: dict[str, Any], is_distinct: bool = False) -> Any:
        """`Module.add_debug_info`, made the same way (same operands, order and name), and
        deduplicated the same way, but looked up by the identity of its metadata operands.

        Why: llvmlite's cache key holds the operand nodes themselves, and a non-distinct
        DIValue hashes and compares structurally, recursively through its operands: each
        node made hashed its nested types over again (with llvmlite's key building, about a
        sixth of the time of building a module).

        Why identity is exact: every node of the module goes through this method or
        `add_metadata` (llvmlite's own cache, `Module._metadatacache`, sees only the module
        flags, which share no node with these), and only distinct nodes, which count by
        identity anyway, are changed after they are made. By induction, if no two live
        nodes are equal without being one object, llvmlite's lookup (operand by operand
        `==`) and this one (identity for nodes, `==` for the rest) find the same node, and
        a node made because none was found equals no earlier one. Like llvmlite, an
        `encoding` token counts by its text and any other DIToken by identity."""
        fixed = []
        for name, op in operands.items():       # lists are made nodes in the given order
            if isinstance(op, (list, tuple)):
                op = self.add_metadata(op)
            fixed.append((name, op))
        return self._node(kind, tuple(sorted(fixed)), is_distinct)   # names are unique

    def _node(self, kind: str, ops: tuple[tuple[str, Any], ...], is_distinct: bool) -> Any:
        """The node of `kind` with operands `ops` (sorted by name, lists already made
        nodes): the one made before with the same operands, or a new one."""
        key = (kind, is_distinct, tuple([
            (name, _BY_IDENTITY, id(op)) if type(op) in _NODES
            else (name, op.value) if name == "encoding" and isinstance(op, ir.DIToken)
            else (name, op)
            for name, op in ops]))
        node = self._nodes.get(key)
        if node is None:
            node = self._nodes[key] = DIValue(self.m, is_distinct, kind, ops,
                                              name=str(len(self.m.metadata)))
        return node

    def add_metadata(self, operands: list[Any] | tuple[Any, ...]) -> Any:
        """`Module.add_metadata` (an MDValue tuple), deduplicated by the identity of its node
        operands, for the reasons of `add_debug_info`."""
        fixed = []
        for op in operands:
            if op is None:
                op = _METADATA(None)
            elif isinstance(op, str):
                op = llvm_values.MetaDataString(self.m, op)
            elif isinstance(op, (list, tuple)):
                op = self.add_metadata(op)
            fixed.append(op)
        key = tuple([(_BY_IDENTITY, id(op)) if type(op) in _NODES else op for op in fixed])
        node = self._tuples.get(key)
        if node is None:
            node = self._tuples[key] = MDValue(self.m, fixed, name=str(len(self.m.metadata)))
        return node

    # ---------------------------------------------------------------- types
    def basic(self, name: str, bits: int, encoding: str) -> Any:
        return self.add_debug_info("DIBasicType", {"name": name, "size": bits, "encoding": T(encoding)})

    def int_type(self) -> Any:
        return self.basic("int", 32, "DW_ATE_signed")

    def pointer(self, base: Any) -> Any:
        return self.add_debug_info("DIDerivedType", {"tag": T("DW_TAG_pointer_type"), "baseType": base, "size": 64})

    def array(self, elem: Any, elem_bits: int, n: int) -> Any:
        sub = self.add_debug_info("DISubrange", {"count": n})
        return self.add_debug_info("DICompositeType", {
            "tag": T("DW_TAG_array_type"), "baseType": elem, "size": elem_bits * n,
            "elements": self.add_metadata([sub])})

    def struct_md(self, name: str | None, bits: int, members: list[tuple[str, Any, int, int]],
                  file: Any, align: int = 0) -> Any:
        ops: dict[str, Any] = {"tag": T("DW_TAG_structure_type"), "file": file, "size": bits}
        if name:
            ops["name"] = name
        if align:
            ops["align"] = align
        st = self.add_debug_info("DICompositeType", ops, is_distinct=True)
        elems = [self.add_debug_info("DIDerivedType", {
            "tag": T("DW_TAG_member"), "name": mname, "scope": st, "file": file, "baseType": mt,
            "size": msize, "offset": moff}) for mname, mt, msize, moff in members]
        st.operands = tuple(list(st.operands) + [("elements", self.add_metadata(elems))])
        return st

    def type(self, t: Type) -> Any:
        key = id(t) if isinstance(t, StructType) else hash(("t", str(t)))
        if key in self.types:
            return self.types[key]
        out: Any
        if isinstance(t, IntType):
            name, enc = _C_NAMES[t.name]
            out = self.basic(name, t.bits, enc)
        elif isinstance(t, BoolType):
            out = self.basic("_Bool", 8, "DW_ATE_boolean")
        elif isinstance(t, BeType):
            out = self.add_debug_info("DIDerivedType", {
                "tag": T("DW_TAG_typedef"), "name": f"__be{t.bits}",
                "baseType": self.type(t.value_type)})
        elif isinstance(t, ArrayType):
            out = self.array(self.type(t.elem), t.elem.size * 8, t.length)
        elif isinstance(t, SpinLockType):
            # The kernel recognises these two by name and size.
            out = self.struct_md("bpf_spin_lock", 32, [("val", self.type(IntType("u32", 32, False)), 32, 0)],
                                 self.file(next(iter(self.files))))
        elif isinstance(t, TimerType):
            u64 = self.type(IntType("u64", 64, False))
            out = self.struct_md("bpf_timer", 128, [("__opaque", self.array(u64, 64, 2), 128, 0)],
                                 self.file(next(iter(self.files))), align=64)
        elif isinstance(t, StructType):
            file = self.file(t.span.file) if t.span else self.file(next(iter(self.files)))
            members = [(f.name, self.type(f.type), f.type.size * 8, f.offset * 8) for f in t.fields]
            out = self.struct_md(t.name, t.size * 8, members, file)
        else:
            raise TypeError(f"no debug type for {t}")
        self.types[key] = out
        return out

    # ---------------------------------------------------------------- maps
    def map_global(self, m: MapType, line: int, file: str) -> tuple[Any, int]:
        """The libbpf BTF map definition: struct { int (*type)[T]; int (*max_entries)[N]; ... }."""
        it = self.int_type()
        members: list[tuple[str, Any, int, int]] = []

        def add_int(name: str, value: int) -> None:
            members.append((name, self.pointer(self.array(it, 32, value)), 64, 64 * len(members)))

        add_int("type", m.kernel_type)
        add_int("max_entries", m.max_entries)
        if m.kind in ("XskMap", "DevMap"):
            add_int("key_size", 4)
            add_int("value_size", 4)
        elif m.kind == "RingBuf":
            pass
        else:
            if m.key is not None and m.kind not in ("Queue",):
                members.append(("key", self.pointer(self.type(m.key)), 64, 64 * len(members)))
            if m.value is not None:
                members.append(("value", self.pointer(self.type(m.value)), 64, 64 * len(members)))
        st = self.struct_md(None, 64 * len(members), members, self.file(file))
        gv = self.add_debug_info("DIGlobalVariable", {
            "name": m.name, "scope": self.cu, "file": self.file(file), "line": line, "type": st,
            "isLocal": False, "isDefinition": True}, is_distinct=True)
        gve = self.add_debug_info("DIGlobalVariableExpression", {
            "var": gv, "expr": self.add_debug_info("DIExpression", {})})
        self.globals.append(gve)
        return gve, len(members)

    # ---------------------------------------------------------------- functions
    def subprogram(self, name: str, file: str, line: int, ret: Any,
                   params: list[tuple[str, Any]], local: bool) -> Any:
        f = self.file(file)
        sty = self.add_debug_info("DISubroutineType", {
            "types": self.add_metadata([ret] + [t for _, t in params])})
        flags = "DISPFlagDefinition | DISPFlagOptimized" + (" | DISPFlagLocalToUnit" if local else "")
        sp = self.add_debug_info("DISubprogram", {
            "name": name, "scope": f, "file": f, "line": line, "type": sty,
            "spFlags": T(flags), "unit": self.cu}, is_distinct=True)
        args = [self.add_debug_info("DILocalVariable", {
            "name": pname, "arg": i + 1, "scope": sp, "file": f, "line": line, "type": pt})
            for i, (pname, pt) in enumerate(params)]
        sp.operands = tuple(list(sp.operands) + [("retainedNodes", self.add_metadata(args))])
        return sp

    def location(self, sp: Any, line: int, col: int) -> Any:
        """The DILocation of `line:col` in `sp` (one per statement: its operands are given
        sorted, skipping `add_debug_info`'s general path)."""
        return self._node("DILocation", (("column", col), ("line", line), ("scope", sp)), False)

    def ctx_pointer(self) -> Any:
        """`struct xdp_md *`, complete (24 bytes) so the verifier does not warn about it."""
        key = hash("xdp_md*")
        if key not in self.types:
            md = self.add_debug_info("DICompositeType", {
                "tag": T("DW_TAG_structure_type"), "name": "xdp_md",
                "file": self.file(next(iter(self.files))), "size": 192,
                "elements": self.add_metadata([])})
            self.types[key] = self.pointer(md)
        return self.types[key]

    def void_pointer(self) -> Any:
        return self.add_debug_info("DIDerivedType", {"tag": T("DW_TAG_pointer_type"),
                                                       "baseType": None, "size": 64})

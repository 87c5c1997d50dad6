"""The text of an llvmlite module, written faster than `str(module)` and byte for byte the same.

Why this exists: turning the lowered `ir.Module` into LLVM assembly with llvmlite's own
`str(module)` costs about as much as building the module (for examples/dctcp.py some 5.5 ms:
`str.format` for every operand, `get_reference` and `_to_string` through their caching
wrappers, `DIValue.descr` and `_stringify_metadata` for every instruction's `!dbg`). That is
on the compile path of everything: `etran build`, every in-process compile (`compile_program`),
and `etran fuzz --programs`, which lowers every program it generates. This writes the same
text in about half the time.

How: `module_text` walks the module as `Module.__repr__` does and writes the pieces the
lowering produces itself, with f-strings over caches that live for one call (the text of each
type, the reference of each value, keyed by `id`). Each fast path replicates llvmlite 0.50's
`descr` for exactly one class, dispatched on the exact class, so that a subclass with a `descr`
of its own is never taken for its parent: the instructions the lowering makes (LoadInstr,
etran's VolatileLoad, StoreInstr, GEPInstr, CallInstr with Function, InlineAsm and etran
`Callee` callees, CastInstr, Instruction for the binary operators, Branch, ConditionalBranch,
Ret, AllocaInstr, ICMPInstr, PhiInstr, SelectInstr, Unreachable), function prototypes, DIValue
and MDValue nodes. Everything else is written by llvmlite itself, piece by piece:

* an instruction of any other class, or a call with per-argument attributes: `str(instr)`;
* an instruction or metadata node whose text llvmlite has already cached (`_StrCaching`):
  that cached text, as `str(module)` prints it (even if the object changed since);
* a prototype with argument or return attributes: `Function.descr_prototype`;
* global variables, identified struct types, and a reference llvmlite computes its own way
  (InlineAsm, Constant other than a plain integer, a name to escape): llvmlite;
* a DIValue with an operand `di_operand` does not know (a Constant, a global): `str(node)`.

How it stays correct: tests/compiler/test_irtext.py lowers every example, transport, benchmark,
corpus and regression program (plain and observed builds), 200 generated programs and a module
built by hand with what the lowering never makes, and asserts `module_text(m) == str(m)`. A
new llvmlite version, or a new instruction class in the lowering, shows up there first; the
fallbacks keep the output right meanwhile.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import llvmlite.ir as ir
from llvmlite.ir import Constant, DIToken, DIValue, IntType, MDValue
from llvmlite.ir import values as llvm_values
from llvmlite.ir._utils import _StringReferenceCaching
from llvmlite.ir.values import NamedValue

from etran.lower.function import VolatileLoad

# the attributes llvmlite's `_StrCaching` and `_StringReferenceCaching` keep an object's text
# and its reference in, once computed (name-mangled): when set, they are what llvmlite writes
_CACHED_STR = "_StrCaching__cached_str"
_CACHED_REF = "_StringReferenceCaching__cached_refstr"

# llvmlite's `_escape_string` keeps these bytes and writes every other one as `\XX`
_ESCAPED = re.compile(rb"[^A-Za-z0-9 !#$%&'()*+,\-./:;<=>?@\[\]^_`{|}~]")
# a block label matching this is written bare (`Block._format_name`)
_SIMPLE_IDENTIFIER = llvm_values._SIMPLE_IDENTIFIER_RE


def _escape(text: str) -> str:
    """`llvm_values._escape_string`, with one regular-expression pass instead of a list of
    one string per byte (a DIFile embeds whole source files)."""
    data = text.encode()
    if _ESCAPED.search(data) is None:
        return data.decode("ascii")
    return _ESCAPED.sub(lambda m: b"\\%02x" % m[0][0], data).decode("ascii")


# how llvmlite writes a reference the first time (`_reference_style`)
_OTHER, _QUOTED, _BARE = 0, 1, 2


def _reference_style(cls: type) -> tuple[str, int]:
    """How llvmlite writes a reference to a value of class `cls` the first time: `(prefix,
    _QUOTED)` for NamedValue's `<prefix>"<name>"`, `(prefix, _BARE)` for the metadata nodes'
    `!<name>`, where the name is the `_name` attribute; `("", _OTHER)` for a class with a
    `get_reference`, `_get_reference` or `name` of its own."""
    if getattr(cls, "get_reference", None) is not _StringReferenceCaching.get_reference \
            or getattr(cls, "name", None) is not NamedValue.name:
        return "", _OTHER
    compute = getattr(cls, "_get_reference", None)
    prefix = str(getattr(cls, "name_prefix", ""))
    if compute is NamedValue._get_reference:
        return prefix, _QUOTED
    if compute is DIValue._get_reference or compute is MDValue._get_reference:
        return prefix, _BARE
    return "", _OTHER


def module_text(module: ir.Module) -> str:
    """The LLVM assembly of `module`: exactly `str(module)`, faster.

    The helpers are closures over this call's caches (cheaper to call than methods, and
    nothing outlives the call: llvmlite objects can change between two calls)."""
    types: dict[int, str] = {}     # id(type) -> str(type), what "{0}".format(type) writes
    voids: dict[int, bool] = {}    # id(type) -> isinstance(type, VoidType)
    refs: dict[int, str] = {}      # id(value) -> value.get_reference()
    typeds: dict[int, str] = {}    # id(value) -> "<type> <reference>"
    dbgs: dict[int, str] = {}      # id(node) -> ", !dbg <reference>"
    callees: dict[int, str] = {}   # id(callee) -> "<type> <reference>" as a call writes it
    strings: dict[str, str] = {}   # string operand of a DI node -> quoted and escaped
    styles: dict[type, tuple[str, int]] = {}   # class -> _reference_style(class)
    # every object whose id is a key above, kept alive until the call returns: an id is then
    # never reused for another object (a type or value made on the fly and dropped, say);
    # `ty` and `ref` pin what they key, and typeds, dbgs and callees are keyed by values `ref` pins
    pinned: list[object] = []

    def ty(t: Any) -> str:
        s = types.get(id(t))
        if s is None:
            s = types[id(t)] = str(t)
            pinned.append(t)
        return s

    def ref(v: Any) -> str:
        """`v.get_reference()`, computed once per value in this call."""
        s: str | None = refs.get(id(v))
        if s is not None:
            return s
        cls = v.__class__
        if cls is Constant:
            # An integer constant is written here (IntType.format_constant: `str(int)`) unless
            # llvmlite already holds its reference. The lowering makes one Constant per use:
            # not kept.
            if v.constant.__class__ is int and v.type.__class__ is IntType and _CACHED_REF not in v.__dict__:
                return str(v.constant)
            return str(v.get_reference())
        style = styles.get(cls)
        if style is None:
            style = styles[cls] = _reference_style(cls)
        prefix, kind = style
        if kind == _OTHER:
            # InlineAsm and etran's `Callee` (neither caches it), Constant subclasses...
            s = str(v.get_reference())
        else:
            d = v.__dict__
            s = d.get(_CACHED_REF)
            if s is None:
                name = d["_name"]
                if kind == _BARE:
                    s = prefix + str(name)             # DIValue/MDValue._get_reference
                elif "\\" in name or '"' in name:
                    s = str(v.get_reference())         # quoted and escaped by llvmlite
                else:
                    s = f'{prefix}"{name}"'            # NamedValue._get_reference
        refs[id(v)] = s
        pinned.append(v)
        return s

    def typed(v: Any) -> str:
        """`"{0} {1}".format(v.type, v.get_reference())`."""
        s = typeds.get(id(v))
        if s is None:
            t = v.type
            if v.__class__ is Constant:   # one Constant object per use: not worth keeping
                c = v.constant
                if c.__class__ is int and t.__class__ is IntType and _CACHED_REF not in v.__dict__:
                    return f"{types.get(id(t)) or ty(t)} {c}"     # as in `ref`
                return f"{ty(t)} {ref(v)}"
            s = typeds[id(v)] = f"{types.get(id(t)) or ty(t)} {refs.get(id(v)) or ref(v)}"
        return s

    def md(metadata: dict[str, Any]) -> str:
        """`_HasMetadata._stringify_metadata(leading_comma=True)`; almost always one `!dbg`."""
        if not metadata:
            return ""
        if len(metadata) == 1:
            node = metadata.get("dbg")
            if node is not None:
                s = dbgs.get(id(node))
                if s is None:
                    s = dbgs[id(node)] = f", !dbg {ref(node)}"
                return s
        return "".join([f", !{k} {ref(v)}" for k, v in metadata.items()])

    # -- instructions: each writer is the `descr` of one class in llvmlite/ir/instructions.py,
    # without the trailing newline (the line is right-stripped, as NamedValue._to_string does);
    # a writer returning None sends the instruction to `str(instr)`.

    def plain(i: Any) -> str:
        # Instruction.descr: the binary operators
        opname = i.opname
        if i.flags:
            opname = " ".join([opname] + i.flags)
        return f"{opname} {ty(i.type)} {', '.join([ref(op) for op in i.operands])}{md(i.metadata)}"

    def load(i: Any) -> str:
        [val] = i.operands
        align = "" if i.align is None else f", align {i.align:d}"
        return f"load {ty(i.type)}, {typed(val)}{align}{md(i.metadata)}"

    def volatile_load(i: Any) -> str:
        # etran.lower.function.VolatileLoad.descr
        return load(i).replace("load ", "load volatile ", 1)

    def store(i: Any) -> str:
        val, ptr = i.operands
        align = "" if i.align is None else f", align {i.align:d}"
        return f"store {typed(val)}, {typed(ptr)}{align}{md(i.metadata)}"

    def gep(i: Any) -> str:
        op = "getelementptr inbounds" if i.inbounds else "getelementptr"
        indices = ", ".join([typed(x) for x in i.indices])
        return f"{op} {ty(i.source_etype)}, {typed(i.pointer)}, {indices} {md(i.metadata)}"

    def cast(i: Any) -> str:
        return f"{i.opname} {typed(i.operands[0])} to {ty(i.type)} {md(i.metadata)}"

    def icmp(i: Any) -> str:
        # CompareInstr.descr
        a, b = i.operands[0], i.operands[1]
        flags = "".join([" " + f for f in i.flags])
        return f"{i.opname}{flags} {i.op} {ty(a.type)} {ref(a)}, {ref(b)} {md(i.metadata)}"

    def select(i: Any) -> str:
        # two spaces after `select` when there are no flags, as llvmlite writes it
        return f"select {' '.join(i.flags)} {typed(i.cond)}, {typed(i.lhs)}, {typed(i.rhs)} {md(i.metadata)}"

    def phi(i: Any) -> str:
        incs = ", ".join([f"[{ref(v)}, {ref(b)}]" for v, b in i.incomings])
        return f"phi {' '.join(i.flags)} {ty(i.type)} {incs} {md(i.metadata)}"

    def alloca(i: Any) -> str:
        s = f"{i.opname} {ty(i.allocated_type)}"
        if i.operands:
            [count] = i.operands
            s += f", {typed(count)}"
        if i.align is not None:
            s += f", align {i.align}"
        return s + md(i.metadata)

    def terminator(i: Any) -> str:
        # Terminator.descr (Branch, ConditionalBranch): every operand typed, labels included
        return f"{i.opname} {', '.join([typed(op) for op in i.operands])}{md(i.metadata)}"

    def ret(i: Any) -> str:
        if i.operands:
            return f"{i.opname} {typed(i.operands[0])}{md(i.metadata)}"
        return f"{i.opname}{md(i.metadata)}"

    def unreachable(i: Any) -> str:
        return f"{i.opname}"

    def call(i: Any) -> str | None:
        # CallInstr._descr; per-argument attributes are left to llvmlite
        if i.arg_attributes:
            return None
        callee = i.operands[0]
        target = callees.get(id(callee))
        if target is None:
            # the whole function type only for a variable-argument callee
            fnty = callee.function_type
            target = callees[id(callee)] = f"{ty(fnty if fnty.var_arg else fnty.return_type)} {ref(callee)}"
        if i.cconv:
            target = f"{i.cconv} {target}"
        tail = f"{i.tail} " if i.tail else ""
        # CallInstrAttributes and FastMathFlags write their members sorted, unexpanded
        attrs = " " + " ".join(sorted(i.attributes)) if i.attributes else ""
        fastmath = " " + " ".join(sorted(i.fastmath)) if i.fastmath else ""
        args = ", ".join([typed(a) for a in i.operands[1:]])
        return f"{tail}{i.opname}{fastmath} {target}({args}){attrs}{md(i.metadata)}"

    # exact class -> writer: a subclass with a `descr` of its own is never taken for its parent
    writers: dict[type, Callable[[Any], str | None]] = {
        ir.LoadInstr: load, VolatileLoad: volatile_load, ir.StoreInstr: store, ir.GEPInstr: gep,
        ir.CallInstr: call, ir.CastInstr: cast, ir.Instruction: plain, ir.Branch: terminator,
        ir.ConditionalBranch: terminator, ir.Ret: ret, ir.AllocaInstr: alloca, ir.ICMPInstr: icmp,
        ir.PhiInstr: phi, ir.SelectInstr: select, ir.Unreachable: unreachable,
    }

    def prototype(f: Any) -> str:
        """Function.descr_prototype when no argument and no return value has attributes
        (as the lowering makes them); llvmlite's own otherwise."""
        for a in (f.return_value, *f.args):
            at = a.attributes
            if at or at.align or at.dereferenceable or at.dereferenceable_or_null \
                    or a.__class__ not in (ir.Argument, ir.ReturnValue):
                buf: list[str] = []
                f.descr_prototype(buf)
                return "".join(buf)
        state = "define" if f.blocks else "declare"
        # str(Argument) is `<type> <reference>`, str(ReturnValue) its type; `[..., ret] if x`
        # keeps the return value always (an object without __bool__)
        ret = ty(f.return_value.type)
        prefix = " ".join([str(x) for x in (state, f.linkage, f.calling_convention) if x] + [ret])
        args = ", ".join([typed(a) for a in f.args])
        var_arg = f.ftype.var_arg
        vararg = (", ..." if var_arg else "") if any(f.args) else ("..." if var_arg else "")
        attrs = " " + " ".join(f.attributes._to_list(f.ftype.return_type)) if f.attributes else ""
        section = f' section "{f.section}"' if f.section else ""
        metadata = md(f.metadata)[2:]    # _stringify_metadata() without the leading comma
        metadata = f" {metadata}" if metadata else ""
        return f"{prefix} {ref(f)}({args}{vararg}){attrs}{section}{metadata}\n"

    def function(f: Any) -> str:
        """`Function.__str__`: the prototype, then the blocks (Block.descr)."""
        buf = [prototype(f)]
        if not f.blocks:
            return "".join(buf)
        buf.append("{\n")
        for blk in f.blocks:
            name = blk.name
            if not _SIMPLE_IDENTIFIER.match(name):   # Block._format_name
                name = '"{}"'.format(name.replace("\\", "\\5c").replace('"', "\\22"))
            buf.append(f"{name}:\n")
            for i in blk.instructions:
                line = i.__dict__.get(_CACHED_STR)   # what str(i) would return as it is
                if line is None:
                    write = writers.get(i.__class__)
                    descr = write(i) if write is not None else None
                    if descr is None:
                        line = str(i)
                    else:
                        # NamedValue._to_string: `<reference> = ` unless of type void
                        t = i.type
                        void = voids.get(id(t))
                        if void is None:
                            void = voids[id(t)] = isinstance(t, ir.VoidType)
                            pinned.append(t)
                        line = descr.rstrip() if void else f"{ref(i)} = {descr}".rstrip()
                buf.append(f"  {line}\n")
        buf.append("}\n")
        return "".join(buf)

    # -- metadata: DIValue.descr and MDValue.descr ------------------------------------------

    def di_operand(value: Any) -> str | None:
        # the checks in llvmlite's order, on exact classes (a subclass could write itself
        # differently); None for anything else (a Constant, a global): left to llvmlite
        if value is None:
            return "null"
        if value is True:
            return "true"
        if value is False:
            return "false"
        kind = value.__class__
        if kind is DIToken:
            return f"{value.value}"
        if kind is str:
            s = strings.get(value)
            if s is None:
                s = strings[value] = f'"{_escape(value)}"'
            return s
        if kind is int:
            return str(value)
        if kind is DIValue or kind is MDValue:
            return ref(value)
        return None

    def metadata_node(node: Any) -> str:
        """`str(node)` of an unnamed metadata node: `!N = ` and its descr."""
        cached = node.__dict__.get(_CACHED_STR)
        if cached is not None:
            return str(cached)
        kind = node.__class__
        if kind is DIValue:
            ops = []
            for key, value in node.operands:
                # the two commonest operands inline: numbers and references to other nodes
                value_kind = value.__class__
                if value_kind is int:
                    s: str | None = str(value)
                elif value_kind is DIValue:
                    s = ref(value)
                else:
                    s = di_operand(value)
                if s is None:
                    return str(node)
                ops.append(f"{key}: {s}")
            distinct = "distinct " if node.is_distinct else ""
            return f"{ref(node)} = {distinct}!{node.kind}({', '.join(ops)})".rstrip()
        if kind is MDValue:
            ops = []
            for op in node.operands:
                if isinstance(op.type, ir.MetaDataType):
                    ops.append("null" if isinstance(op, Constant) and op.constant is None else ref(op))
                else:
                    ops.append(typed(op))
            return f"{ref(node)} = !{{ {', '.join(ops)} }}".rstrip()
        return str(node)

    # -- the module: Module.__repr__ ---------------------------------------------------------
    m = module
    lines = [f'; ModuleID = "{m.name!s}"', f'target triple = "{m.triple!s}"',
             f'target datalayout = "{m.data_layout!s}"', ""]
    lines += [it.get_declaration() for it in m.get_identified_types().values()]
    # functions written here; global variables by llvmlite (a handful, and cached by it)
    lines += [function(g) if g.__class__ is ir.Function else str(g) for g in m.globals.values()]
    for name, nmd in m.namedmetadata.items():
        lines.append(f"!{name} = !{{ {', '.join([ref(op) for op in nmd.operands])} }}")
    lines += [metadata_node(node) for node in m.metadata]
    return "\n".join(lines)

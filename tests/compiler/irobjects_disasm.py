"""Real BPF objects for the disassembler tests, built by llvmlite from small textual LLVM IR.

Each object is what the etran compiler emits in miniature: bpfel, cpu v3, the -O2 module pipeline,
debug info whose DIFile embeds the DSL source (so ``.BTF.ext`` line records carry the line text),
a DILocation on every instruction, BTF-defined maps in ``.maps``, static subprograms in ``.text``.
"""

from __future__ import annotations

import llvmlite.binding as llvm  # type: ignore[import-untyped]

HEADER = """target datalayout = "e-m:e-p:64:64-i64:64-i128:128-n32:64-S128"
target triple = "bpfel"
"""

_TARGET_MACHINES: dict[str, llvm.TargetMachine] = {}


def target_machine(triple: str = "bpfel") -> llvm.TargetMachine:
    if triple not in _TARGET_MACHINES:
        llvm.initialize_all_targets()
        llvm.initialize_all_asmprinters()
        target = llvm.Target.from_triple(triple)
        _TARGET_MACHINES[triple] = target.create_target_machine(cpu="v3", opt=2, reloc="static", codemodel="small")
    return _TARGET_MACHINES[triple]


def compile_ir(text: str, big_endian: bool = False) -> bytes:
    """Verify, optimise at -O2 and emit an ELF object (bpfeb instead of bpfel if ``big_endian``)."""
    if big_endian:
        text = text.replace('"e-m:e-', '"E-m:e-').replace('triple = "bpfel"', 'triple = "bpfeb"')
    module = llvm.parse_assembly(text)
    module.verify()
    tm = target_machine("bpfeb" if big_endian else "bpfel")
    builder = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=2))
    builder.getModulePassManager().run(module, builder)
    return bytes(tm.emit_object(module))


def escape(text: str) -> str:
    """An LLVM IR string literal body: printable ASCII stays, everything else becomes \\XX."""
    return "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else f"\\{ord(c):02X}" for c in text)


def line_of(source: str, text: str) -> int:
    """1-based number of the first source line containing ``text``."""
    for number, line in enumerate(source.splitlines(), 1):
        if text in line:
            return number
    raise ValueError(f"{text!r} is not in the source")


class DebugInfo:
    """Numbered metadata nodes for one module: file with embedded source, compile unit, types, maps, functions."""

    def __init__(self, filename: str, directory: str, source: str) -> None:
        self.source = source
        self._nodes: list[str | None] = []
        self._globals: list[str] = []
        self.file = self.add(f'!DIFile(filename: "{filename}", directory: "{directory}", source: "{escape(source)}")')
        self.unit = self.reserve()

    def reserve(self) -> str:
        self._nodes.append(None)
        return f"!{len(self._nodes)}"

    def define(self, ref: str, text: str) -> str:
        self._nodes[int(ref[1:]) - 1] = text
        return ref

    def add(self, text: str) -> str:
        return self.define(self.reserve(), text)

    def basic(self, name: str, bits: int, signed: bool = False) -> str:
        encoding = "DW_ATE_signed" if signed else "DW_ATE_unsigned"
        return self.add(f'!DIBasicType(name: "{name}", size: {bits}, encoding: {encoding})')

    def pointer(self, base: str = "null") -> str:
        return self.add(f"!DIDerivedType(tag: DW_TAG_pointer_type, baseType: {base}, size: 64)")

    def map(self, name: str, map_type: int, max_entries: int, key: str, value: str) -> str:
        """A libbpf BTF-defined map: struct { int (*type)[T]; int (*max_entries)[N]; K *key; V *value; }."""
        int_t = self.basic("int", 32, signed=True)

        def int_array_ptr(n: int) -> str:
            array = self.add(f"!DICompositeType(tag: DW_TAG_array_type, baseType: {int_t}, size: {32 * n}, "
                             f"elements: !{{!DISubrange(count: {n})}})")
            return self.pointer(array)

        struct = self.reserve()
        members = [(n, t, 64 * i) for i, (n, t) in enumerate(
            [("type", int_array_ptr(map_type)), ("max_entries", int_array_ptr(max_entries)),
             ("key", self.pointer(key)), ("value", self.pointer(value))])]
        refs = [self.add(f'!DIDerivedType(tag: DW_TAG_member, name: "{n}", scope: {struct}, file: {self.file}, '
                         f"baseType: {t}, size: 64, offset: {o})") for n, t, o in members]
        self.define(struct, f"distinct !DICompositeType(tag: DW_TAG_structure_type, file: {self.file}, size: 256, "
                            f"elements: !{{{', '.join(refs)}}})")
        var = self.add(f'distinct !DIGlobalVariable(name: "{name}", scope: {self.unit}, file: {self.file}, '
                       f"line: 1, type: {struct}, isLocal: false, isDefinition: true)")
        expr = self.add(f"!DIGlobalVariableExpression(var: {var}, expr: !DIExpression())")
        self._globals.append(expr)
        return expr

    def function(self, name: str, def_text: str, ret: str, params: list[tuple[str, str]], local: bool) -> str:
        """A DISubprogram at the source line containing ``def_text``; ``local`` gives BTF static linkage."""
        line = line_of(self.source, def_text)
        sp = self.reserve()
        sig = self.add(f"!DISubroutineType(types: !{{{', '.join([ret] + [t for _, t in params])}}})")
        args = [self.add(f'!DILocalVariable(name: "{p}", arg: {i}, scope: {sp}, file: {self.file}, line: {line}, '
                         f"type: {t})") for i, (p, t) in enumerate(params, 1)]
        flags = "DISPFlagDefinition | DISPFlagOptimized" + (" | DISPFlagLocalToUnit" if local else "")
        return self.define(sp, f'distinct !DISubprogram(name: "{name}", scope: {self.file}, file: {self.file}, '
                               f"line: {line}, type: {sig}, spFlags: {flags}, unit: {self.unit}, "
                               f"retainedNodes: !{{{', '.join(args)}}})")

    def at(self, scope: str, text: str, column: int = 5) -> str:
        """``, !dbg`` suffix placing an instruction on the source line containing ``text``."""
        return f", !dbg !DILocation(line: {line_of(self.source, text)}, column: {column}, scope: {scope})"

    def text(self) -> str:
        self.define(self.unit, f'distinct !DICompileUnit(language: DW_LANG_C99, file: {self.file}, producer: "etran", '
                               f"isOptimized: true, runtimeVersion: 0, emissionKind: FullDebug, "
                               f"globals: !{{{', '.join(self._globals)}}})")
        count = len(self._nodes)
        lines = ["!llvm.dbg.cu = !{" + self.unit + "}", f"!llvm.module.flags = !{{!{count + 1}, !{count + 2}}}"]
        lines += [f"!{i} = {node}" for i, node in enumerate(self._nodes, 1)]
        lines += [f'!{count + 1} = !{{i32 7, !"Dwarf Version", i32 5}}',
                  f'!{count + 2} = !{{i32 2, !"Debug Info Version", i32 3}}']
        return "\n".join(lines) + "\n"


FLOW_SOURCE = """\
from etran.dsl import xdp, Map, u32, u64, PASS, DROP

conns = Map.array(u32, u64, max_entries=4)


@xdp
def rx(pkt):
    n = pkt.len()
    if n < 14:
        return DROP
    conns[0] += 1
    return PASS
"""


def flow_object(big_endian: bool = False) -> bytes:
    """XDP ``rx``: a length check, then ``conns[0] += 1`` through a map lookup and an atomic add."""
    di = DebugInfo("flow.py", "/src/transports", FLOW_SOURCE)
    u32, u64 = di.basic("unsigned int", 32), di.basic("unsigned long long", 64)
    conns = di.map("conns", 2, 4, u32, u64)
    rx = di.function("rx", "def rx(pkt)", di.basic("int", 32, signed=True), [("pkt", di.pointer())], local=False)
    n, check, count, drop, ret = (di.at(rx, t) for t in ("n = pkt.len()", "if n < 14", "conns[0] += 1",
                                                           "return DROP", "return PASS"))
    return compile_ir(HEADER + f"""
@conns = global {{ ptr, ptr, ptr, ptr }} zeroinitializer, section ".maps", align 8, !dbg {conns}
@LICENSE = global [4 x i8] c"GPL\\00", section "license", align 1
@llvm.compiler.used = appending global [2 x ptr] [ptr @conns, ptr @LICENSE], section "llvm.metadata"

define i32 @rx(ptr %ctx) nounwind section "xdp" !dbg {rx} {{
entry:
  %key = alloca i32, align 4
  %data = load i32, ptr %ctx, align 4{n}
  %endp = getelementptr i8, ptr %ctx, i64 4{n}
  %end = load i32, ptr %endp, align 4{n}
  %len = sub i32 %end, %data{n}
  %short = icmp ult i32 %len, 14{check}
  br i1 %short, label %drop, label %count{check}
drop:
  ret i32 1{drop}
count:
  store i32 0, ptr %key, align 4{count}
  %slot = call ptr inttoptr (i64 1 to ptr)(ptr @conns, ptr %key){count}
  %missing = icmp eq ptr %slot, null{count}
  br i1 %missing, label %pass, label %add{count}
add:
  %old = atomicrmw add ptr %slot, i64 1 monotonic{count}
  br label %pass{count}
pass:
  ret i32 2{ret}
}}
""" + di.text(), big_endian)


CALLS_SOURCE = """\
from etran.dsl import xdp, tc, loop, u32, PASS

def fold(x: u32) -> u32:
    return (x >> 16) + (x & 0xffff)

def mix(x: u32) -> u32:
    return fold(x) * 7

def step(i: u32, ctx) -> int:
    return 0

def shared(x: u32) -> u32:
    return fold(x ^ 0x5a5a)

@xdp
def rx(pkt):
    h = mix(pkt.len())
    loop(4, step)
    return PASS + (h & 1)

@tc
def tx(skb):
    return shared(skb.len())
"""


def calls_object(big_endian: bool = False) -> bytes:
    """Two programs sharing subprograms in ``.text``.

    ``rx`` (xdp) calls static ``mix``, which calls static ``fold``, and passes static ``step`` to
    ``bpf_loop`` (an ld_imm64 relocated against ``.text``); ``tx`` (tc) calls the global ``shared``
    in ``.text`` (a relocation against its own symbol), which calls ``fold``.
    """
    di = DebugInfo("calls.py", "/src/transports", CALLS_SOURCE)
    u32, int_t, ptr = di.basic("unsigned int", 32), di.basic("int", 32, signed=True), di.pointer()
    fold = di.function("fold", "def fold", u32, [("x", u32)], local=True)
    mix = di.function("mix", "def mix", u32, [("x", u32)], local=True)
    step = di.function("step", "def step", di.basic("long long", 64, signed=True),
                       [("i", u32), ("ctx", ptr)], local=True)
    shared = di.function("shared", "def shared", u32, [("x", u32)], local=False)
    rx = di.function("rx", "def rx", int_t, [("pkt", ptr)], local=False)
    tx = di.function("tx", "def tx", int_t, [("skb", ptr)], local=False)
    f1, m1, s1, g1 = di.at(fold, "return (x >> 16)"), di.at(mix, "return fold(x)"), di.at(step, "return 0"), \
        di.at(shared, "return fold(x ^")
    r1, r2, r3, t1 = di.at(rx, "h = mix"), di.at(rx, "loop(4"), di.at(rx, "return PASS"), di.at(tx, "return shared")
    return compile_ir(HEADER + f"""
@LICENSE = global [4 x i8] c"GPL\\00", section "license", align 1
@llvm.compiler.used = appending global [1 x ptr] [ptr @LICENSE], section "llvm.metadata"

define internal i32 @fold(i32 %x) noinline nounwind !dbg {fold} {{
  %hi = lshr i32 %x, 16{f1}
  %lo = and i32 %x, 65535{f1}
  %sum = add i32 %hi, %lo{f1}
  ret i32 %sum{f1}
}}

define internal i32 @mix(i32 %x) noinline nounwind !dbg {mix} {{
  %f = call i32 @fold(i32 %x){m1}
  %m = mul i32 %f, 7{m1}
  ret i32 %m{m1}
}}

define internal i64 @step(i32 %i, ptr %ctx) noinline nounwind !dbg {step} {{
  ret i64 0{s1}
}}

define dso_local i32 @shared(i32 %x) noinline nounwind !dbg {shared} {{
  %y = xor i32 %x, 23130{g1}
  %f = call i32 @fold(i32 %y){g1}
  ret i32 %f{g1}
}}

define i32 @rx(ptr %ctx) nounwind section "xdp" !dbg {rx} {{
  %data = load i32, ptr %ctx, align 4{r1}
  %endp = getelementptr i8, ptr %ctx, i64 4{r1}
  %end = load i32, ptr %endp, align 4{r1}
  %len = sub i32 %end, %data{r1}
  %h = call i32 @mix(i32 %len){r1}
  %n = call i64 inttoptr (i64 181 to ptr)(i32 4, ptr @step, ptr null, i64 0){r2}
  %bit = and i32 %h, 1{r3}
  %act = add i32 %bit, 2{r3}
  ret i32 %act{r3}
}}

define i32 @tx(ptr %skb) nounwind section "tc" !dbg {tx} {{
  %len = load i32, ptr %skb, align 4{t1}
  %r = call i32 @shared(i32 %len){t1}
  ret i32 %r{t1}
}}
""" + di.text(), big_endian)


def data_object() -> bytes:
    """Global data and a kfunc, no debug info: ``.rodata`` (section symbol), ``total`` in ``.bss``, an extern call."""
    return compile_ir(HEADER + """
@total = dso_local global i64 0, section ".bss", align 8
@table = internal constant [4 x i32] [i32 1, i32 2, i32 3, i32 4], section ".rodata", align 4
@LICENSE = global [4 x i8] c"GPL\\00", section "license", align 1
declare extern_weak i32 @bpf_kfunc_thing(ptr) section ".ksyms"

define i32 @p(ptr %ctx) nounwind section "xdp" {
  %i = load i32, ptr %ctx
  %m = and i32 %i, 3
  %e = zext i32 %m to i64
  %g = getelementptr [4 x i32], ptr @table, i64 0, i64 %e
  %v = load i32, ptr %g
  %w = zext i32 %v to i64
  %o = atomicrmw add ptr @total, i64 %w monotonic
  %k = call i32 @bpf_kfunc_thing(ptr %ctx)
  %r = add i32 %k, %v
  ret i32 %r
}
""")

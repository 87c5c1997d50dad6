"""`etran.lower.irtext.module_text` writes exactly what llvmlite's `str(module)` writes.

The pipeline hands LLVM the text of `module_text` (it is faster); these tests are what keeps
it byte for byte llvmlite's: every example, transport, benchmark, corpus and regression
program the checker accepts, lowered plain and observed, and a few hundred generated programs.
A new instruction class in the lowering, or a new llvmlite, fails here first (its fallbacks
keep the output right meanwhile, so a failure means a fast path writes something else).

`module_text` runs first on each module: llvmlite caches the text of what it has written
(instructions, metadata nodes) and `module_text` reuses such caches, so the other order would
compare llvmlite with itself.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from etran.dsl.diagnostics import DiagnosticError
from etran.lower.irtext import module_text
from etran.lower.module import lower
from etran.pipeline import check_source
from etran.testing.progen import sample_program

ROOT = Path(__file__).resolve().parents[2]

PATTERNS = ("examples/*.py", "etran/transports/*.py", "bench/c/*.py", "tests/corpus/**/*.py",
            "tests/property/found/*.py")
SOURCES = {pattern: sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob(pattern))
           for pattern in PATTERNS}

GENERATED = 200     # programs from etran.testing.progen, in chunks of CHUNK
CHUNK = 25
SEED = 2026


def _assert_same(module: Any, what: str) -> None:
    """`module_text(module) == str(module)`, naming the first line that differs."""
    ours = module_text(module)
    theirs = str(module)
    if ours == theirs:
        return
    a, b = ours.split("\n"), theirs.split("\n")
    n = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    mine = a[n] if n < len(a) else "<end of text>"
    llvm = b[n] if n < len(b) else "<end of text>"
    pytest.fail(f"{what}: line {n + 1} differs\n  module_text: {mine!r}\n  str(module): {llvm!r}")


def test_the_sources_are_found() -> None:
    assert sum(len(paths) for paths in SOURCES.values()) > 100
    assert "examples/dctcp.py" in SOURCES["examples/*.py"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_source_programs(pattern: str) -> None:
    """Every program of `pattern` the checker accepts (the bad corpus is refused)."""
    compared = 0
    for path in SOURCES[pattern]:
        try:
            # rule violations recorded, not raised: the text is the subject here, and without
            # the rules' verdict the budget's second opinion (a whole compile) is not run
            program = check_source((ROOT / path).read_text(), str(ROOT / path), enforce_rules=False)
        except DiagnosticError:
            continue
        for observe in (False, True):
            module, _ = lower(program, observe=observe)
            _assert_same(module, f"{path} (observe={observe})")
        compared += 1
    assert compared >= min(3, len(SOURCES[pattern])), f"{pattern}: only {compared} compared"


@pytest.mark.parametrize("start", range(0, GENERATED, CHUNK))
def test_generated_programs(start: int) -> None:
    """Generated programs, observed every other one (each lowering costs as much as a check)."""
    compared = 0
    for i in range(start, start + CHUNK):
        gen = sample_program(i, seed=SEED)
        try:
            program = check_source(gen.source, "generated.py", enforce_rules=False)
        except DiagnosticError:
            continue
        module, _ = lower(program, observe=bool(i % 2))
        _assert_same(module, f"sample_program({i}, seed={SEED}) (observe={bool(i % 2)})\n{gen.source}")
        compared += 1
    assert compared >= CHUNK * 4 // 5, "the generator's programs should mostly pass the checker"


def test_constructs_the_lowering_does_not_make() -> None:
    """The fallbacks and the less common branches of the fast paths: names to quote and
    escape, flags, attributes on calls and arguments, a variable-argument callee, a calling
    convention, inline assembly, instructions without a fast path (switch, fence, comment),
    globals, identified types, metadata with strings, null, tokens and constants, and an
    instruction whose text llvmlite cached before it changed (it writes the cached text)."""
    import llvmlite.ir as ir

    m = ir.Module(name="odd", context=ir.Context())   # its own: identified types are per context
    i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
    counter = ir.GlobalVariable(m, i64, "counter")
    counter.initializer = ir.Constant(i64, 7)
    counter.linkage = "internal"
    f = ir.Function(m, ir.FunctionType(i64, [i64, ir.PointerType()]), "f")
    f.attributes.add("nounwind")
    f.args[0].name = 'we"ird\\name'
    f.args[1].add_attribute("noalias")
    printf = ir.Function(m, ir.FunctionType(i32, [i32], var_arg=True), "printf")
    ext = ir.Function(m, ir.FunctionType(ir.VoidType(), []), "ext")
    entry, other = f.append_basic_block("entry"), f.append_basic_block("needs quoting!")
    b = ir.IRBuilder(entry)
    x = b.add(f.args[0], ir.Constant(i64, 1), name="x", flags=["nsw"])
    y = b.mul(x, ir.Constant(i64, True), name='y"q')
    s = b.select(b.icmp_unsigned("<", x, y), x, y, flags=["fast"])
    b.call(printf, [ir.Constant(i32, 3), ir.Constant(i8, -1).sext(i32)], tail=True)
    b.call(ext, [], cconv="fastcc", attrs=["noreturn"])
    b.call(f, [s, f.args[1]], arg_attrs={1: ("nonnull",)})
    b.store(b.load(f.args[1], typ=i64, align=8), counter, align=8)
    arr = b.alloca(i64, size=ir.Constant(i32, 2), name="arr")
    arr.align = 16
    c = b.ptrtoint(b.gep(arr, [ir.Constant(i32, 1)], inbounds=False, source_etype=i64), i64)
    b.comment("a comment")
    b.call(ir.InlineAsm(ir.FunctionType(ir.VoidType(), []), "nop", "", side_effect=True), [])
    b.switch(c, other).add_case(3, other)
    b.position_at_end(other)
    phi = b.phi(i64)
    phi.add_incoming(x, entry)
    b.fence("seq_cst")
    b.ret(phi)
    ty = m.add_debug_info("DIBasicType", {"name": 'int\n"x"', "size": 32, "encoding": ir.DIToken("DW_ATE_signed"),
                                          "flag": True, "none": None, "constant": ir.Constant(i32, 5)})
    loc = m.add_debug_info("DILocation", {"line": 1, "column": 2, "scope": ty})
    x.set_metadata("dbg", loc)
    y.set_metadata("dbg", loc)
    y.set_metadata("other", m.add_metadata(["s", None, ir.Constant(i32, 1)]))
    m.add_named_metadata("llvm.ident", ["etran"])
    m.context.get_identified_type("odd.struct").set_body(i64, i32)
    str(phi)                          # cached by llvmlite...
    phi.add_incoming(y, other)        # ...and stale from now on: str(module) writes the cache
    _assert_same(m, "a module built by hand")

"""The typed program the checker hands on is well formed (`etran.ir.validate`) for every
example, corpus program, kept regression and a sample of generated programs, and the
validator notices each kind of breakage it is meant to catch."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from etran.dsl.diagnostics import DiagnosticError
from etran.ir import tir
from etran.ir.types import U8, U64
from etran.ir.validate import validate
from etran.pipeline import check_source
from etran.testing.progen import sample_programs

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(ROOT.glob("examples/*.py")) + sorted(ROOT.glob("tests/corpus/good/*.py")) + \
    sorted(ROOT.glob("tests/corpus/shapes/*.py")) + sorted(ROOT.glob("tests/property/found/*.py"))


def test_checked_files_are_well_formed() -> None:
    problems: list[str] = []
    validated = 0
    for path in FILES:
        try:
            program = check_source(path.read_text(), str(path), enforce_rules=False)
        except DiagnosticError:
            continue  # a regression the checker now refuses on purpose (test_found.py)
        problems += validate(program)
        validated += 1
    assert problems == []
    assert validated >= 50, f"only {validated} of {len(FILES)} files were checked"


def test_generated_programs_are_well_formed() -> None:
    validated = 0
    for gen in sample_programs(120, seed=11):
        try:
            program = check_source(gen.source, "generated.py", enforce_rules=False)
        except DiagnosticError:
            continue
        assert validate(program) == [], gen.source
        validated += 1
    assert validated >= 80


SOURCE = """\
from etran.dsl import *

class Flow(Struct):
    hits: u64

flows = ArrayMap(Flow, max_entries=4)

def bump(f: Flow) -> u64:
    f.hits += 1
    return f.hits

@xdp
def rx(pkt: Packet) -> int:
    f = flows.get(0)
    if f is None:
        return XDP_PASS
    for i in range(4):
        if bump(f) > 10:
            break
    return XDP_DROP
"""


def _program() -> tir.Program:
    program = check_source(SOURCE, "v.py")
    assert validate(program) == []
    return program


def _replace_in(fn: tir.Function, old: object, new: object) -> None:
    """Swap one node of `fn`'s body (the trees are frozen: rebuild the path to it)."""
    def walk(node: object) -> object:
        if node is old:
            return new
        if isinstance(node, tuple):
            return tuple(walk(x) for x in node)
        if dataclasses.is_dataclass(node) and not isinstance(node, (tir.Function, tir.Var)) \
                and type(node).__module__ == tir.__name__:
            changes = {f.name: walk(getattr(node, f.name)) for f in dataclasses.fields(node)
                       if f.name not in ("span", "type", "map", "func", "struct", "field")}
            return dataclasses.replace(node, **changes)  # type: ignore[type-var]
        return node
    fn.body = walk(fn.body)  # type: ignore[assignment]


def _find(fn: tir.Function, kind: type) -> object:
    stack: list[object] = list(fn.body)
    while stack:
        n = stack.pop()
        if isinstance(n, kind):
            return n
        if isinstance(n, tuple):
            stack.extend(n)
        elif dataclasses.is_dataclass(n) and not isinstance(n, (tir.Function, tir.Var)):
            stack.extend(getattr(n, f.name) for f in dataclasses.fields(n))
    raise LookupError(kind)


def test_a_variable_of_another_function_is_found() -> None:
    program = _program()
    rx = program.hook("rx")
    stranger = tir.Var("stranger", U64)
    ret = _find(rx, tir.Return)
    assert isinstance(ret, tir.Return)
    _replace_in(rx, ret, tir.Return(tir.VarRef(stranger, U64, ret.span), ret.span))
    assert any("`stranger` is neither a parameter nor a local" in p for p in validate(program))


def test_an_operand_of_the_wrong_type_is_found() -> None:
    program = _program()
    compare = _find(program.hook("rx"), tir.Compare)
    assert isinstance(compare, tir.Compare)
    _replace_in(program.hook("rx"), compare.right, tir.Const(10, U8, compare.span))
    assert any("compared operands" in p for p in validate(program))


def test_a_break_outside_a_loop_and_a_callee_checked_late_are_found() -> None:
    program = _program()
    rx = program.hook("rx")
    ret = _find(rx, tir.Return)
    assert isinstance(ret, tir.Return)
    _replace_in(rx, ret, tir.Break(ret.span))
    program.functions.reverse()   # the hook now comes before the function it calls
    problems = validate(program)
    assert any("Break" in p and "outside a loop" in p for p in problems)
    assert any("calls `bump` before it was checked" in p for p in problems)

"""What the parts of the body checker share about the function being checked.

`FunctionContext` is the per-function state (locals, enclosing loops, the lock
held); `Declarations` is what a body needs from the module-level checker
(`etran.check.modules.Checker` provides it), stated as a protocol so the body
checker does not depend on the module that drives it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from etran.check.flow import Flow
from etran.check.scope import FuncDecl, ModuleScope
from etran.dsl import ast
from etran.dsl.diagnostics import DiagnosticSink, Span
from etran.ir import tir
from etran.ir.types import Field, MapType, StructType, Type


class CheckFailed(Exception):
    """Raised to abandon an expression after its error was reported."""


class Declarations(Protocol):
    """The module-level checker, as seen from a function body."""

    def ensure_checked(self, decl: FuncDecl, span: Span | None = None) -> None:
        """Check `decl`'s body now if it was not yet (a call checks its callee first)."""

    def all_maps(self) -> list[MapType]:
        """Every map declared in every loaded module."""

    def timer_handler(self, st: StructType, f: Field) -> tir.Function | None:
        """The @timer handler of `st.f`, if one is declared."""

    def resolve_type(self, e: ast.Expr, scope: ModuleScope, sink: DiagnosticSink,
                     what: str) -> Type | None:
        """The type an annotation names."""

    def returns_action(self, fn: tir.Function) -> bool:
        """Whether `fn` returns an XDP action: a packet hook, or a function declared `-> int`."""

    def specialize(self, decl: FuncDecl, kinds: tuple[str, ...], call: Span) -> tir.Function:
        """`decl` checked again for calls whose arguments point where `kinds` says ("packet",
        "other", or "mixed": see `ExprChecker.packet_kind`); `call` is the first such call."""


@dataclass(eq=False)
class LoopFrame:
    lock_depth: int
    body: tuple[tir.Stmt, ...] = ()
    breaks: list[Flow] = field(default_factory=list)
    continues: list[Flow] = field(default_factory=list)


@dataclass(eq=False)
class FunctionContext:
    checker: Declarations
    function: tir.Function
    locals: dict[str, tir.Var] = field(default_factory=dict)
    loops: list[LoopFrame] = field(default_factory=list)
    lock: tir.Place | None = None
    lock_name: str = ""
    lock_depth: int = 0
    # Names assigned exactly once from a constant expression act as constants.
    constants: dict[str, tir.Const] = field(default_factory=dict)
    single_constants: frozenset[str] = frozenset()  # bound once, at the top of the body
    # Struct parameters, and names bound to them: maybe packet views, maybe values on the
    # stack or in a map; each call decides (`CallChecker.call_function`).
    maybe_views: set[tir.Var] = field(default_factory=set)
    # Whether what the body does depends on which struct parameters are packet views (it
    # indexes one at a runtime index): then every call uses a copy checked for its arguments.
    view_dependent: bool = False

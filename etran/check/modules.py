"""The checker's driver: load modules, declare their names, check every function.

Order of work, and why:
1. load the main file and, recursively, every DSL module it imports (imports
   of other DSL modules are compiled together, so transports share headers);
2. declare each module's names in source order, as Python would bind them:
   constants are folded, structs are laid out, maps are created;
3. resolve every function's signature (annotations may name later structs);
4. check bodies; a call checks its callee first, so effects (helper calls,
   resizes) are known at every call site. A function that indexes a struct
   parameter at a runtime index is checked again for what each call passes
   (a packet view or not: `specialize`), and the call uses that copy.
The main file arrives parsed (`etran.pipeline` runs the passes in order);
the whole-program rules and the budget run after this pass, in
`etran.analysis`.
"""
from __future__ import annotations

import difflib
import functools
import importlib.util
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from etran.check.builtins import BUILTINS, DSL_EXPORTS, Builtin
from etran.check.context import CheckFailed, FunctionContext
from etran.check.flow import Flow
from etran.check.scope import ConstSym, FuncDecl, ModuleScope, Symbol
from etran.check.statements import BodyChecker
from etran.dsl import ast
from etran.dsl.diagnostics import DiagnosticSink, Source, Span
from etran.dsl.parser import parse
from etran.ir import tir
from etran.ir.types import (
    MAP_KINDS,
    PACKET,
    U32,
    VOID,
    ArrayType,
    BeType,
    BoolType,
    Field,
    IntType,
    MapType,
    PacketType,
    SpinLockType,
    StructType,
    TimerType,
    Type,
    UntypedInt,
    holds_special,
    layout,
)

PAGE = 4096


class Checker:
    def __init__(self, sink: DiagnosticSink, search_dirs: list[Path]) -> None:
        self.sink = sink
        self.search_dirs = search_dirs
        self.modules: dict[str, ModuleScope] = {}
        self.loading: list[str] = []
        self.order: list[tir.Function] = []
        self.decls: list[FuncDecl] = []
        self.timer_handlers: dict[tuple[int, str], tir.Function] = {}
        # Every struct's methods, shared by all module scopes (a struct may be imported).
        self.methods: dict[StructType, dict[str, FuncDecl]] = {}
        # Functions declared `-> int`: they return an XDP action, as packet hooks do.
        self.action_functions: set[tir.Function] = set()
        # Copies of functions checked for what their calls pass (None: being checked).
        self.specialized: dict[tuple[FuncDecl, tuple[str, ...]], tir.Function | None] = {}
        self.parse_seconds = 0.0

    # ---------------------------------------------------------------- modules
    def load(self, name: str, text: str, filename: str, tree: ast.Module | None = None
             ) -> ModuleScope:
        """Declare a module's names; an imported module (no `tree` given) is parsed here."""
        if tree is None:
            t0 = time.perf_counter()
            # Syntax trees are immutable: an imported module's tree is reused while its
            # text is unchanged (the main file is parsed afresh by the pipeline).
            tree = _parse_cached(text, filename)
            self.parse_seconds += time.perf_counter() - t0
        scope = ModuleScope(name, Source(filename, text), tree, methods=self.methods)
        self.modules[name] = scope
        self.loading.append(name)
        try:
            self.declare(scope)
        finally:
            self.loading.pop()
        return scope

    def find_module(self, dotted: str) -> Path | None:
        rel = Path(*dotted.split("."))
        for d in self.search_dirs:
            for cand in (d / rel.with_suffix(".py"), d / rel / "__init__.py"):
                if cand.is_file():
                    return cand
        try:
            spec = importlib.util.find_spec(dotted)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return None
        return Path(spec.origin)

    def import_module(self, dotted: str, span: Span) -> ModuleScope | None:
        if dotted in self.modules:
            if dotted in self.loading:
                self.sink.error(span, "import", f"circular import of `{dotted}`",
                                "move the shared declarations into a third module")
                return None
            return self.modules[dotted]
        path = self.find_module(dotted)
        if path is None:
            self.sink.error(span, "import", f"cannot find the module `{dotted}`",
                            "DSL modules are looked up next to the importing file, then on "
                            "the Python path")
            return None
        return self.load(dotted, path.read_text(), str(path))

    # ---------------------------------------------------------------- declarations
    def bind(self, scope: ModuleScope, name: str, sym: Symbol, span: Span) -> None:
        if name in scope.names and not isinstance(scope.names[name], Builtin):
            prev = scope.spans.get(name)
            where = f" (first at line {prev.line})" if prev and prev.source is span.source else ""
            self.sink.error(span, "name", f"`{name}` is already defined{where}",
                            "each module-level name is defined once")
            return
        scope.names[name] = sym
        scope.spans[name] = span

    def declare(self, scope: ModuleScope) -> None:
        for item in scope.tree.body:
            try:
                self.declare_item(scope, item)
            except CheckFailed:
                pass
        for decl in scope.functions:
            try:
                self.signature(decl)
            except CheckFailed:
                pass

    def declare_item(self, scope: ModuleScope, item: ast.TopLevel) -> None:
        if isinstance(item, ast.ImportFrom):
            self.declare_import(scope, item)
        elif isinstance(item, ast.Import):
            self.sink.error(item.span, "import", f"`import {item.module}` is not supported",
                            f"write `from {item.module} import name`")
        elif isinstance(item, ast.ClassDef):
            self.declare_struct(scope, item)
        elif isinstance(item, ast.FunctionDef):
            fn = tir.Function(item.name, [], VOID, item.span, scope.name, docstring=item.docstring,
                              name_span=item.name_span)
            decl = FuncDecl(item, fn, scope)
            scope.functions.append(decl)
            self.bind(scope, item.name, decl, item.name_span)
        elif isinstance(item, ast.Assign) and isinstance(item.target, ast.Name) \
                and item.value is not None:
            self.declare_global(scope, item)
        else:
            self.sink.error(item.span, "module-level",
                            "only imports, constants, maps, classes and functions may appear "
                            "at module level", "move this code into a function")

    def declare_import(self, scope: ModuleScope, item: ast.ImportFrom) -> None:
        if item.module == "__future__":
            return
        spans = list(item.name_spans) or [item.span] * len(item.names)
        if item.module == "etran":
            # The package is the compiler (Python the checker cannot read): a program that
            # imports from it meant the language's names. Said once, and the names given
            # as if from etran.dsl, so that no use of them is reported again.
            names = ", ".join(alias if alias == name else f"{name} as {alias}"
                              for name, alias in item.names)
            self.sink.error(item.span, "import", "the language's names come from `etran.dsl`, "
                            "not from the `etran` package (the compiler)",
                            f"write `from etran.dsl import {names}`")
        if item.module in ("etran", "etran.dsl"):
            for (name, alias), span in zip(item.names, spans):
                if name == "*":
                    for n in DSL_EXPORTS:
                        scope.names.setdefault(n, BUILTINS[n])
                elif name in DSL_EXPORTS:
                    self.bind(scope, alias, BUILTINS[name], span)
                elif item.module == "etran":
                    pass                    # reported above
                else:
                    close = difflib.get_close_matches(name, DSL_EXPORTS, n=1)
                    hint = (f"did you mean `{close[0]}`?" if close else
                            "`from etran.dsl import *` brings in every name the language "
                            "provides (docs/language.md lists them)")
                    self.sink.error(span, "import", f"`etran.dsl` has no name `{name}`", hint)
            return
        other = self.import_module(item.module, item.span)
        if other is None:
            return
        for (name, alias), span in zip(item.names, spans):
            if name == "*":
                for n, sym in other.names.items():
                    if not n.startswith("_") and not isinstance(sym, Builtin):
                        self.bind(scope, n, sym, span)
                continue
            found = other.names.get(name)
            if found is None:
                close = difflib.get_close_matches(name, list(other.names), n=1)
                self.sink.error(span, "import", f"`{item.module}` has no name `{name}`",
                                *([f"did you mean `{close[0]}`?"] if close else []))
            else:
                self.bind(scope, alias, found, span)

    def declare_global(self, scope: ModuleScope, item: ast.Assign) -> None:
        assert isinstance(item.target, ast.Name) and item.value is not None
        name = item.target.id
        value = item.value
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
            sym = scope.lookup(value.func.id)
            if isinstance(sym, Builtin) and sym.kind == "map":
                m = self.declare_map(scope, name, sym.name, value)
                if m is not None:
                    scope.maps.append(m)
                    self.bind(scope, name, m, item.target.span)
                return
        checker = BodyChecker(scope, self.sink)
        expected = None
        if item.annotation is not None:
            expected = self.resolve_type(item.annotation, scope, self.sink, "a constant")
            if expected is None:
                return
            if not isinstance(expected, (IntType, BoolType)):
                self.sink.error(item.annotation.span, "constant",
                                "constants are integers or bools")
                return
        try:
            c = checker.constant(value, expected)
            if expected is not None:
                c = checker.coerce(c, expected, value.span, f"`{name}`")  # type: ignore[assignment]
        except CheckFailed:
            return
        assert isinstance(c, tir.Const)
        self.bind(scope, name, ConstSym(name, c.value, c.type, item.target.span), item.target.span)

    def declare_map(self, scope: ModuleScope, name: str, kind: str, call: ast.Call) -> MapType | None:
        _, keyed, _ = MAP_KINDS[kind]
        has_value = kind not in ("XskMap", "DevMap")
        has_key = keyed and kind not in ("ArrayMap", "PerCpuArray", "XskMap", "DevMap")
        want = (["key"] if has_key else []) + (["value"] if has_value else []) + ["max_entries"]
        given: dict[str, ast.Expr] = {}
        if len(call.args) > len(want):
            self.sink.error(call.span, "map-decl", f"{kind} takes {', '.join(want)}")
            return None
        for a, w in zip(call.args, want):
            given[w] = a
        for kw in call.keywords:
            if kw.name not in want or kw.name in given:
                self.sink.error(kw.span, "map-decl", f"unexpected argument `{kw.name}` for {kind}",
                                f"{kind} takes {', '.join(want)}")
                return None
            given[kw.name] = kw.value
        missing = [w for w in want if w not in given]
        if missing:
            self.sink.error(call.span, "map-decl", f"{kind} needs {', '.join(missing)}",
                            f"e.g. `{name} = {kind}({', '.join(want)}=...)`".replace(
                                "key=...", "Key").replace("value=...", "Value"))
            return None
        key: Type | None = U32 if kind in ("ArrayMap", "PerCpuArray", "XskMap", "DevMap") else None
        if has_key:
            key = self.resolve_type(given["key"], scope, self.sink, "a map key")
            if key is None:
                return None
            if isinstance(key, BeType):
                key = key.value_type
            if not isinstance(key, (IntType, StructType)):
                self.sink.error(given["key"].span, "map-decl", f"a map key is an integer or a "
                                f"struct, not {key}")
                return None
        value: StructType | None = None
        if has_value:
            vt = self.resolve_type(given["value"], scope, self.sink, "a map value")
            if vt is None:
                return None
            if not isinstance(vt, StructType):
                self.sink.error(given["value"].span, "map-decl", f"map values are structs, not {vt}",
                                f"wrap it: `class Counter(Struct): value: {vt}`")
                return None
            value = vt
        checker = BodyChecker(scope, self.sink)
        try:
            n = checker.constant(given["max_entries"]).value
        except CheckFailed:
            return None
        span = given["max_entries"].span
        if n <= 0:
            self.sink.error(span, "map-decl", "max_entries must be positive")
            return None
        if kind == "RingBuf" and (n % PAGE or n & (n - 1)):
            self.sink.error(span, "map-decl", f"a RingBuf's size ({n}) must be a power of two "
                            f"and a multiple of {PAGE}", "e.g. `max_entries=65536`")
            return None
        if value is not None and not self.value_allowed(kind, value, given["value"].span):
            return None
        return MapType(name, kind, key, value, n, call.span)  # type: ignore[arg-type]

    def value_allowed(self, kind: str, value: StructType, span: Span) -> bool:
        if value.size == 0:
            self.sink.error(span, "map-decl", f"`{value.name}` has no fields; a map value needs one")
            return False
        has_lock = any(isinstance(f.type, SpinLockType) for f in value.fields)
        has_timer = any(isinstance(f.type, TimerType) for f in value.fields)
        nested = [f.name for f in value.fields if isinstance(f.type, (StructType, ArrayType))
                  and holds_special(f.type)]
        if nested:
            self.sink.error(span, "map-decl", f"`{value.name}.{nested[0]}` nests a SpinLock or Timer",
                            "put SpinLock and Timer fields directly in the map's value struct")
            return False
        if has_lock and kind not in ("HashMap", "ArrayMap"):
            self.sink.error(span, "map-decl", f"a {kind} cannot hold a SpinLock",
                            "the kernel allows spin locks in HashMap and ArrayMap values only")
            return False
        if has_timer and kind not in ("HashMap", "LruHashMap", "ArrayMap"):
            self.sink.error(span, "map-decl", f"a {kind} cannot hold a Timer",
                            "the kernel allows timers in HashMap, LruHashMap and ArrayMap values")
            return False
        return True

    def declare_struct(self, scope: ModuleScope, node: ast.ClassDef) -> None:
        base = node.bases[0] if len(node.bases) == 1 else None
        sym = scope.lookup(base.id) if isinstance(base, ast.Name) else None
        if not (isinstance(sym, Builtin) and sym.kind == "base"):
            self.sink.error(node.name_span, "struct", f"class `{node.name}` must derive from "
                            "Struct or Header", f"write `class {node.name}(Struct):`")
            return
        st = StructType(node.name, sym.name == "Header", scope.name, node.name_span)
        self.bind(scope, node.name, st, node.name_span)
        for other in node.others:
            self.sink.error(other.span, "struct", "a class body holds field declarations "
                            "(`name: type`) and methods only",
                            "put constants at module level")
        members: list[tuple[str, object, Span | None]] = []
        seen: set[str] = set()
        for f in node.fields:
            t = self.resolve_type(f.annotation, scope, self.sink, "a field")
            if t is None:
                continue
            if f.name in seen:
                self.sink.error(f.span, "struct", f"field `{f.name}` is declared twice")
                continue
            seen.add(f.name)
            if t is st:
                self.sink.error(f.annotation.span, "struct", f"`{st.name}` cannot contain itself")
                continue
            if isinstance(t, (UntypedInt, PacketType)) or t == VOID:
                self.sink.error(f.annotation.span, "struct", f"a field cannot be {t}")
                continue
            if st.packed and isinstance(t, (SpinLockType, TimerType)):
                self.sink.error(f.annotation.span, "struct", "a Header cannot hold a SpinLock or "
                                "Timer", "declare a Struct for map values")
                continue
            members.append((f.name, t, f.span))
        layout(st, members)  # type: ignore[arg-type]
        scope.structs.append(st)
        for m in node.methods:
            fn = tir.Function(f"{st.name}.{m.name}", [], VOID, m.span, scope.name,
                              docstring=m.docstring, name_span=m.name_span)
            decl = FuncDecl(m, fn, scope, owner=st)
            self.methods.setdefault(st, {})[m.name] = decl
            scope.functions.append(decl)
            if m.decorators:
                self.sink.error(m.decorators[0].span, "hook", "methods cannot be hooks",
                                "declare hooks as module-level functions")

    # ---------------------------------------------------------------- types
    def resolve_type(self, e: ast.Expr, scope: ModuleScope, sink: DiagnosticSink,
                     what: str) -> Type | None:
        if isinstance(e, ast.NoneLit):
            return VOID
        if isinstance(e, ast.Name):
            sym = scope.lookup(e.id)
            if sym is None and e.id in ("bool", "int"):
                sym = BUILTINS[e.id]
            if isinstance(sym, StructType):
                return sym
            if isinstance(sym, Builtin) and sym.kind == "type":
                return sym.type
            if isinstance(sym, Builtin) and sym.kind == "int":
                sink.error(e.span, "type", f"`int` has no fixed width ({what})",
                           "use u8, u16, u32, u64, i8, i16, i32 or i64")
                return None
            if sym is None:
                from etran.check.builtins import unknown_name_hint
                types = [n for n, s in scope.names.items() if isinstance(s, StructType)]
                sink.error(e.span, "name", f"type `{e.id}` is not defined",
                           unknown_name_hint(e.id, types))
                return None
            sink.error(e.span, "type", f"`{e.id}` is not a type")
            return None
        if isinstance(e, ast.Subscript) and isinstance(e.value, ast.Name):
            sym = scope.lookup(e.value.id)
            if isinstance(sym, Builtin) and sym.kind == "array":
                if len(e.index) != 2:
                    sink.error(e.span, "type", "write `Array[T, N]`")
                    return None
                elem = self.resolve_type(e.index[0], scope, sink, what)
                if elem is None:
                    return None
                try:
                    n = BodyChecker(scope, sink).constant(e.index[1]).value
                except CheckFailed:
                    return None
                if n <= 0:
                    sink.error(e.index[1].span, "type", "an Array needs at least one element")
                    return None
                if isinstance(elem, (UntypedInt, PacketType)) or elem == VOID:
                    sink.error(e.index[0].span, "type", f"an Array cannot hold {elem}")
                    return None
                return ArrayType(elem, n)  # type: ignore[arg-type]
        if isinstance(e, ast.BinOp) and e.op == "|":
            sink.error(e.span, "type", "write the plain type; lookups are narrowed by `is None`",
                       "a variable assigned from `m.get(k)` is Optional automatically")
            return None
        sink.error(e.span, "type", f"this is not a type ({what})")
        return None

    # ---------------------------------------------------------------- signatures
    def signature(self, decl: FuncDecl) -> None:
        node, fn, scope = decl.node, decl.function, decl.module
        params = list(node.params)
        if decl.owner is not None:
            if not params or params[0].name != "self":
                self.sink.error(node.name_span, "type", f"method `{node.name}` must take `self` first")
                return
            fn.params.append(tir.Var("self", decl.owner, params[0].span))
            params = params[1:]
        for p in params:
            if p.annotation is None:
                self.sink.error(p.span, "type", f"parameter `{p.name}` needs a type",
                                f"write `{p.name}: u32` (or the struct it refers to)")
                continue
            t = self.resolve_type(p.annotation, scope, self.sink, "a parameter")
            if t is None:
                continue
            if isinstance(t, BeType):
                t = t.value_type
            if isinstance(t, (ArrayType, SpinLockType, TimerType)) or t == VOID:
                self.sink.error(p.annotation.span, "type", f"a parameter cannot be a {t}")
                continue
            fn.params.append(tir.Var(p.name, t, p.span))
        hook = self.hook_kind(decl)
        if node.returns is None:
            ret: Type | None = VOID
        elif hook in (None, "xdp", "egress", "gen") and isinstance(node.returns, ast.Name) \
                and node.returns.id == "int":
            ret = U32  # an XDP action, for a function as for a hook
            self.action_functions.add(fn)
        else:
            ret = self.resolve_type(node.returns, scope, self.sink, "a return type")
        if ret is None:
            return
        if isinstance(ret, BeType):
            ret = ret.value_type
        if not isinstance(ret, (IntType, BoolType)) and ret != VOID:
            self.sink.error(node.returns.span if node.returns else node.span, "type",
                            f"a function returns an integer, a bool or None, not {ret}")
            return
        fn.returns = ret
        fn.hook = hook
        if hook is not None:
            self.hook_signature(decl)

    def hook_kind(self, decl: FuncDecl) -> str | None:
        decos = decl.node.decorators
        if not decos:
            return None
        if len(decos) > 1:
            self.sink.error(decos[1].span, "hook", "a function has at most one hook decorator")
        d = decos[0]
        scope = decl.module
        if isinstance(d, ast.Name):
            sym = scope.lookup(d.id)
            if isinstance(sym, Builtin) and sym.kind == "hook":
                return sym.name
            if isinstance(sym, Builtin) and sym.kind == "timer_hook":
                self.sink.error(d.span, "hook", "`@timer` names the Timer field it handles",
                                "write `@timer(Conn.rto)`")
                return None
        if isinstance(d, ast.Call) and isinstance(d.func, ast.Name):
            sym = scope.lookup(d.func.id)
            if isinstance(sym, Builtin) and sym.kind == "timer_hook":
                arg = d.args[0] if len(d.args) == 1 and not d.keywords else None
                st = scope.lookup(arg.value.id) if isinstance(arg, ast.Attribute) \
                    and isinstance(arg.value, ast.Name) else None
                f = st.field(arg.attr) if isinstance(st, StructType) and arg is not None else None  # type: ignore[union-attr]
                if f is None or not isinstance(f.type, TimerType):
                    self.sink.error(d.span, "hook", "`@timer` takes a Timer field: "
                                    "`@timer(Struct.field)`")
                    return None
                assert isinstance(st, StructType)
                key = (id(st), f.name)
                if key in self.timer_handlers:
                    self.sink.error(d.span, "hook", f"`{st.name}.{f.name}` already has a handler")
                    return None
                decl.function.timer_field = (st, f)
                self.timer_handlers[key] = decl.function
                return "timer"
        self.sink.error(d.span, "hook", "unknown decorator",
                        "hooks are @xdp, @egress, @gen and @timer(Struct.field)")
        return None

    def hook_signature(self, decl: FuncDecl) -> None:
        fn = decl.function
        span = decl.node.name_span
        if fn.hook in ("xdp", "egress", "gen"):
            if len(fn.params) != 1 or not isinstance(fn.params[0].type, PacketType):
                self.sink.error(span, "hook", f"an @{fn.hook} hook takes one parameter, the packet",
                                f"write `def {fn.name}(pkt: Packet) -> int:`")
            if fn.returns != U32:
                self.sink.error(span, "hook-return", f"an @{fn.hook} hook returns an XDP action",
                                "annotate it `-> int` and return XDP_PASS, XDP_DROP, ...")
            return
        assert fn.timer_field is not None
        st, _field = fn.timer_field
        maps = [m for m in self.all_maps() if m.value is st]
        if len(maps) != 1:
            self.sink.error(span, "timer", f"`{st.name}` must be the value of exactly one map for "
                            "its timer to have a handler")
            return
        m = maps[0]
        ok = (len(fn.params) == 2 and fn.params[1].type is st
              and (fn.params[0].type is m.key or fn.params[0].type == m.key))
        if not ok:
            self.sink.error(span, "hook", f"a @timer handler takes the key and the value of `{m.name}`",
                            f"write `def {fn.name}(key: {m.key}, value: {st.name}) -> None:`")
        if fn.returns != VOID:
            self.sink.error(span, "hook-return", "a @timer handler returns nothing (-> None)")

    # ---------------------------------------------------------------- bodies
    def all_maps(self) -> list[MapType]:
        return [m for s in self.modules.values() for m in s.maps]

    def returns_action(self, fn: tir.Function) -> bool:
        return fn.hook in ("xdp", "egress", "gen") or fn in self.action_functions

    def timer_handler(self, st: StructType, f: Field) -> tir.Function | None:
        return self.timer_handlers.get((id(st), f.name))

    def ensure_checked(self, decl: FuncDecl, span: Span | None = None) -> None:
        if decl.checked or decl.in_progress:
            return  # in progress: recursion, reported by the rules pass
        decl.in_progress = True
        try:
            self.check_body(decl)
        finally:
            decl.in_progress = False
            decl.checked = True
        self.order.append(decl.function)

    def specialize(self, decl: FuncDecl, kinds: tuple[str, ...], call: Span) -> tir.Function:
        """A copy of `decl` checked for calls whose arguments point where `kinds` says, one
        per parameter: "packet" (a packet view), "other" (the stack, a map value) or "mixed"
        (`CallChecker.specialized_call` says why).

        A copy given a packet view, without a Packet parameter of its own, takes the packet
        as one more parameter. Problems of the copy that were not reported for `decl`
        itself are reported, with the call they come from."""
        key = (decl, kinds)
        if key in self.specialized:
            done = self.specialized[key]
            # Still being checked: a recursive call, reported on `decl` itself.
            return done if done is not None else decl.function
        generic = decl.function
        params = [tir.Var(p.name, p.type, p.span) for p in generic.params]
        if any(k != "other" for k in kinds) and not any(isinstance(p.type, PacketType)
                                                        for p in params):
            params.append(tir.Var("pkt", PACKET, generic.name_span or generic.span))
        fn = tir.Function(generic.name, params, generic.returns, generic.span, generic.module,
                          name_span=generic.name_span, docstring=generic.docstring)
        if generic in self.action_functions:
            self.action_functions.add(fn)
        self.specialized[key] = None
        sink = DiagnosticSink()
        try:
            self.check_body(decl, fn, kinds, sink)
        finally:
            self.specialized[key] = fn
        known = {(d.span.file if d.span else "", d) for d in self.sink.items}
        parts = [f"`{p.name}` is a packet view" + (" on some paths only" if k == "mixed" else "")
                 for p, k in zip(params, kinds) if k != "other"]
        where = ", ".join(parts) or "no argument is a packet view"
        for d in sink.items:
            if (d.span.file if d.span else "", d) not in known:
                at = f"line {call.line}" if d.span and d.span.file == call.file else str(call)
                self.sink.items.append(replace(d, hints=d.hints + (
                    f"this is `{generic.name}` as called at {at}, where {where}",)))
        self.order.append(fn)
        return fn

    def check_body(self, decl: FuncDecl, fn: tir.Function | None = None,
                   kinds: tuple[str, ...] | None = None, sink: DiagnosticSink | None = None
                   ) -> None:
        """Check `decl`'s body into `fn`: its own function, or a copy from `specialize`
        that knows where its struct parameters point (`kinds`)."""
        fn = fn or decl.function
        sink = sink or self.sink
        ctx = FunctionContext(self, fn, single_constants=_single_bindings(decl.node.body))
        checker = BodyChecker(decl.module, sink, ctx)
        flow = Flow()
        declared = len(decl.function.params)
        for i, p in enumerate(fn.params[:declared]):
            ctx.locals[p.name] = p
            flow = flow.assign(p)
            if isinstance(p.type, StructType) and fn.hook is None:
                if kinds is None:
                    # A struct parameter may be a packet view, decided by each call where
                    # that matters; a Header parameter is taken for one (stale after a
                    # resize) everywhere else.
                    ctx.maybe_views.add(p)
                    if p.type.packed:
                        flow = flow.set_view(p)
                elif kinds[i] != "other":
                    flow = flow.set_view(p, partial=kinds[i] == "mixed")
            if isinstance(p.type, StructType):
                # ... and a struct parameter may point into any hash map holding its type.
                for m in self.all_maps():
                    if m.value is p.type and m.kind in ("HashMap", "LruHashMap", "PerCpuHashMap"):
                        flow = flow.set_map_ref(p, m.name)
        for p in fn.params[declared:]:
            flow = flow.assign(p)  # the packet a copy with packet views takes
        checker.flow = flow
        fn.body = checker.block(decl.node.body)
        if kinds is None:
            decl.view_dependent = ctx.view_dependent
        if checker.flow.reachable:
            if fn.returns != VOID:
                sink.error(decl.node.name_span, "missing-return",
                           f"`{fn.name}` can reach its end without returning a {fn.returns}",
                           "add a `return` on every path")
            else:
                fn.body = fn.body + (tir.Return(None, decl.node.span),)


def _program_maps(main: ModuleScope, every: list[MapType],
                  functions: list[tir.Function]) -> list[MapType]:
    """The main module's maps, and the imported maps its code uses (in declaration order).

    Importing a header or a helper from another transport must not bring that
    transport's maps into this object.
    """
    used: set[int] = {id(m) for m in main.maps}
    seen: set[int] = set()
    # Maps are named by the `map` field of the nodes that use them; the functions the
    # code calls (and the timer handlers it starts) use theirs too.
    stack: list[object] = [fn for fn in functions if fn.module == main.name]
    while stack:
        node = stack.pop()
        if isinstance(node, tir.Function):
            if id(node) not in seen:
                seen.add(id(node))
                stack.extend(node.body)
            continue
        used_map = getattr(node, "map", None)
        if isinstance(used_map, MapType):
            used.add(id(used_map))
        if isinstance(node, tir.Call):
            stack.append(node.func)
        elif isinstance(node, tir.TimerStart) and node.handler is not None:
            stack.append(node.handler)
        stack.extend(tir.children(node))
    return [m for m in every if id(m) in used]


@functools.lru_cache(maxsize=64)
def _parse_cached(text: str, filename: str) -> ast.Module:
    return parse(text, filename)


def _statements(body: tuple[ast.Stmt, ...]) -> Iterator[ast.Stmt]:
    """Every statement of `body`, nested blocks included (`if`, `for`, `with`): the only
    nodes that bind names (expressions hold no statements), without a walk through every
    expression node."""
    for stmt in body:
        yield stmt
        yield from _statements(getattr(stmt, "body", ()))
        yield from _statements(getattr(stmt, "orelse", ()))


def _single_bindings(body: tuple[ast.Stmt, ...]) -> frozenset[str]:
    """Names bound exactly once in a function, by a plain assignment at the top of its body.

    Such a name, bound to a constant expression, is a named constant: its one
    assignment runs before any use on every path.
    """
    counts: dict[str, int] = {}
    for node in _statements(body):
        target = None
        # one arm per node type, so the type checker knows `target` in each
        if isinstance(node, (ast.Assign, ast.AugAssign)) and isinstance(node.target, ast.Name):  # noqa: SIM114
            target = node.target.id
        elif isinstance(node, ast.For):
            target = node.target.id
        if target is not None:
            counts[target] = counts.get(target, 0) + (2 if isinstance(node, (ast.AugAssign, ast.For)) else 1)
    top = {s.target.id for s in body if isinstance(s, ast.Assign) and isinstance(s.target, ast.Name)
           and s.annotation is None}
    return frozenset(n for n in top if counts.get(n) == 1)


def check_program(tree: ast.Module, text: str, filename: str = "<input>",
                  search_dirs: list[Path] | None = None, sink: DiagnosticSink | None = None,
                  timings: dict[str, float] | None = None) -> tir.Program:
    """The check pass: the main module's syntax tree (and every DSL module it imports,
    parsed here as the imports are met) becomes a typed program; raise DiagnosticError
    listing every problem found. `timings["parse"]` grows by the imports' parse time."""
    sink = sink or DiagnosticSink()
    dirs = list(search_dirs or [])
    if filename and Path(filename).parent.is_dir():
        dirs.insert(0, Path(filename).parent)
    checker = Checker(sink, dirs)
    name = Path(filename).stem or "main"
    main = checker.load(name, text, filename, tree=tree)
    sink.raise_if_errors()
    for scope in list(checker.modules.values()):
        for decl in scope.functions:
            checker.ensure_checked(decl)
    if timings is not None:
        timings["parse"] = timings.get("parse", 0.0) + checker.parse_seconds
    sink.raise_if_errors()
    hooks = [d.function for d in main.functions if d.function.hook is not None]
    return tir.Program(
        name=name, filename=filename, source=text,
        sources={s.source.name: s.source.text for s in checker.modules.values()},
        structs=[st for s in checker.modules.values() for st in s.structs],
        maps=_program_maps(main, checker.all_maps(), checker.order),
        functions=list(checker.order),
        hooks=hooks,
        constants={n: c.value for n, c in main.names.items() if isinstance(c, ConstSym)},
    )

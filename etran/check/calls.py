"""Type-checking calls: casts, struct construction, user functions, maps, packets, helpers.

Every call is resolved to the typed node that says what it does, and its
kernel-visible effect (a helper call, a redirect, a packet resize) is recorded
on the enclosing function: the lock rule and the per-hook helper rules are
checked against those records.
"""
from __future__ import annotations

from typing import Any

from etran.check.builtins import Builtin
from etran.check.expressions import ExprChecker
from etran.check.scope import ConstSym, FuncDecl
from etran.dsl import ast
from etran.dsl.diagnostics import Span
from etran.ir import tir
from etran.ir.semantics import CHECKSUM_CHUNK
from etran.ir.types import (
    I32,
    U32,
    U64,
    UNTYPED,
    ArrayType,
    BoolType,
    IntType,
    MapType,
    OptionalType,
    PacketType,
    StructType,
    TimerType,
    Type,
    UntypedInt,
)

# Maps whose update or delete frees or replaces the element a reference points to.
REPLACING_MAPS = ("HashMap", "LruHashMap", "PerCpuHashMap")

SEQ_OPS = {"seq_after": ">", "seq_before": "<", "seq_after_eq": ">=", "seq_before_eq": "<="}


# The atomic builtins: the operation and how a call looks.
ATOMICS = {"atomic_add": ("add", "atomic_add(v.counter, 1)"),
           "atomic_xchg": ("xchg", "atomic_xchg(v.owner, 1)"),
           "atomic_cas": ("cas", "atomic_cas(v.owner, 0, 1)")}


class CallChecker(ExprChecker):
    # ---------------------------------------------------------------- bookkeeping
    def effect(self, kind: str, name: str, span: Span) -> None:
        """Record a kernel-visible effect; inside a lock, a helper call is an error."""
        if self.fn is None:
            self.fail(span, "constant", "a call is not a constant",
                      f"module-level names are compile-time constants: call `{name}` inside a "
                      "hook, and keep a value that must last between runs in a map")
        self.fn.function.effects.append((kind, name, span))
        if kind == "helper" and self.fn.lock is not None:
            self.sink.error(span, "lock-helper",
                            f"`{name}` calls a kernel helper while `{self.fn.lock_name}` is held",
                            "the verifier allows no helper calls or map lookups under a spin "
                            "lock: do them before the `with` block and keep only field "
                            "updates inside")

    def stack(self, nbytes: int) -> None:
        if self.fn is not None:
            self.fn.function.stack_bytes += (nbytes + 7) // 8 * 8

    # ---------------------------------------------------------------- dispatch
    def e_Call(self, e: ast.Call, expected: Type | None) -> tir.Expr:
        func = e.func
        if isinstance(func, ast.Attribute):
            base = self.resolve(func.value)
            if isinstance(base, MapType):
                return self.map_method(base, func.attr, e)
            if isinstance(base, tuple):
                return self.timer_method(base[1], func, e)
            if isinstance(base, (StructType, Builtin, ConstSym, FuncDecl)):
                self.fail(func.span, "name", f"`{func.attr}` cannot be called on this name")
            assert not isinstance(base, tuple)
            bt = base.type
            if isinstance(bt, PacketType):
                return self.packet_method(func.attr, e)
            if isinstance(bt, OptionalType):
                self.none_error(func.value, base)
            if isinstance(bt, StructType):
                decl = self.module.methods.get(bt, {}).get(func.attr)
                if decl is None:
                    self.fail(func.span, "name", f"`{bt.name}` has no method `{func.attr}`")
                return self.call_function(decl, [base], e)
            self.fail(func.span, "type", f"a value of type {bt} has no method `{func.attr}`")
        if not isinstance(func, ast.Name):
            self.fail(func.span, "type", "this expression cannot be called")
        sym = self.lookup(func.id, func.span)
        if isinstance(sym, FuncDecl):
            return self.call_function(sym, [], e)
        if isinstance(sym, StructType):
            return self.construct(sym, e)
        if isinstance(sym, Builtin):
            return self.builtin_call(sym, e, expected)
        self.fail(func.span, "type", f"`{func.id}` is not a function")

    def args(self, e: ast.Call, n: int, name: str, usage: str) -> tuple[ast.Expr, ...]:
        """The call's `n` positional arguments; otherwise an error whose hint is `usage`,
        the call written out with its parameters' names."""
        if e.keywords:
            self.fail(e.keywords[0].span, "type", f"`{name}` takes no keyword arguments",
                      f"call it as `{usage}`")
        if len(e.args) != n:
            self.fail(e.span, "type", f"`{name}` takes {n} argument{'s' if n != 1 else ''}, "
                      f"{len(e.args)} given", f"call it as `{usage}`")
        return e.args

    # ---------------------------------------------------------------- user functions
    def call_function(self, decl: FuncDecl, leading: list[tir.Expr], e: ast.Call) -> tir.Expr:
        fn = decl.function
        if fn.hook is not None:
            self.fail(e.span, "type", f"`{fn.name}` is a hook; the kernel calls it",
                      "move the shared code into a plain function and call that")
        if self.fn is None:
            self.fail(e.span, "constant", "a function call is not a constant")
        self.fn.checker.ensure_checked(decl, e.span)
        params = fn.params[len(leading):]
        shown = ", ".join(f"{p.name}: {p.type}" for p in params)
        args = self.args(e, len(params), fn.name,
                         f"{fn.name}({shown})" if not leading else f"value.{fn.name}({shown})")
        values = list(leading)
        for p, a in zip(params, args):
            values.append(self.argument(p, a, fn.name))
        if decl.view_dependent:
            fn, values = self.specialized_call(decl, values, e.span)
        self.fn.function.call_sites.append((fn, e.span))
        for kind, name, span in fn.effects:
            self.fn.function.effects.append((kind, name, span))
            if kind == "map-update":
                self.flow = self.flow.map_updated(name, e.span)
        if self.fn.lock is not None:
            locks = [(n, s) for k, n, s in fn.effects if k == "lock"]
            helpers = [(n, s) for k, n, s in fn.effects if k == "helper"]
            if locks:
                n, s = locks[0]
                self.sink.error(e.span, "lock-nested",
                                f"`{fn.name}` takes `{n}` (line {s.line}) while "
                                f"`{self.fn.lock_name}` is held; the verifier allows one spin "
                                "lock at a time",
                                f"call `{fn.name}` after the `with` block, once "
                                f"`{self.fn.lock_name}` is released")
            elif helpers:
                n, s = helpers[0]
                self.sink.error(e.span, "lock-helper",
                                f"`{fn.name}` calls the helper `{n}` (line {s.line}) while "
                                f"`{self.fn.lock_name}` is held",
                                "the verifier allows no helper calls or map lookups under a spin "
                                f"lock: call `{fn.name}` before or after the `with` block and "
                                "keep only field updates inside")
        if fn.may_resize:
            self.resized(e.span)
        return tir.Call(fn, tuple(values), fn.returns, e.span)

    def specialized_call(self, decl: FuncDecl, values: list[tir.Expr], span: Span
                         ) -> tuple[tir.Function, list[tir.Expr]]:
        """The copy of `decl` checked for this call, and the arguments it takes.

        `decl` indexes a struct parameter at a runtime index: an element of a packet view
        needs a check against the packet's end, one on the stack or in a map does not (and
        the packet's end is no bound for it). Functions are inlined, so every call has its
        own copy anyway; the copy is checked knowing which struct arguments are packet
        views, and takes the packet too when one is (to find the packet's end)."""
        assert self.fn is not None
        fn = decl.function
        kinds: list[str] = []
        for p, v in zip(fn.params, values):
            kind = "other"
            if isinstance(p.type, StructType):
                if self.maybe_view(v):
                    # Not known here either: this function is checked again for each call.
                    self.fn.view_dependent = True
                else:
                    kind = self.packet_kind(v)
            kinds.append(kind)
        copy = self.fn.checker.specialize(decl, tuple(kinds), span)
        if len(copy.params) > len(values):
            pkt = next((p for p in self.fn.function.params if isinstance(p.type, PacketType)), None)
            if pkt is None:
                self.fail(span, "packet-access", f"`{fn.name}` indexes a packet view at a runtime "
                          "index, which needs the packet, and this function has none",
                          "take the packet as a parameter, `pkt: Packet`, and pass it on")
            values = values + [tir.VarRef(pkt, pkt.type, span)]
        return copy, values

    def argument(self, p: tir.Var, a: ast.Expr, fname: str) -> tir.Expr:
        v = self.value(a, p.type)
        pt = p.type
        if isinstance(pt, PacketType):
            if not isinstance(v.type, PacketType):
                self.fail(a.span, "type", f"`{p.name}` of `{fname}` is the packet")
            return v
        if isinstance(pt, StructType):
            if isinstance(v.type, OptionalType):
                self.none_error(a, v)
            if v.type is not pt:
                self.fail(a.span, "type", f"`{p.name}` of `{fname}` is a {pt}, not {v.type}")
            return v
        return self.coerce(v, pt, a.span, f"argument `{p.name}` of `{fname}`")

    def resized(self, span: Span) -> None:
        assert self.fn is not None
        self.fn.function.may_resize = True
        self.flow = self.flow.resized(span)

    # ---------------------------------------------------------------- structs
    def construct(self, st: StructType, e: ast.Call, map_value: bool = False) -> tir.Expr:
        if st.special_fields and not map_value:
            self.fail(e.span, "map-only", f"`{st.name}` holds a SpinLock or Timer, so it can only "
                      "live in a map",
                      "create an entry with `m.set(key, " + st.name + "(...))` or "
                      "`m.insert(...)`, then work on `m.get(key)`")
        if e.args:
            self.fail(e.args[0].span, "type", f"fields of `{st.name}` are set by name",
                      f"write `{st.name}({st.fields[0].name if st.fields else 'field'}=...)`")
        inits: list[tuple[Any, tir.Expr]] = []
        seen: set[str] = set()
        for kw in e.keywords:
            f = st.field(kw.name)
            if f is None:
                self.fail(kw.span, "name", f"`{st.name}` has no field `{kw.name}`",
                          "its fields are: " + ", ".join(x.name for x in st.fields))
            if kw.name in seen:
                self.fail(kw.span, "type", f"field `{kw.name}` is set twice")
            seen.add(kw.name)
            v = self.value(kw.value, f.type)
            if isinstance(f.type, (StructType, ArrayType)):
                if isinstance(v.type, OptionalType):
                    self.none_error(kw.value, v)
                if v.type != f.type and v.type is not f.type:
                    self.fail(kw.span, "type", f"field `{kw.name}` is a {f.type}, not {v.type}")
            else:
                v = self.coerce(v, f.type, kw.value.span, f"field `{kw.name}`")
            inits.append((f, v))
        if self.fn is None:
            self.fail(e.span, "constant", "a struct value is not a constant")
        self.stack(st.size)
        return tir.NewStruct(st, tuple(inits), st, e.span)

    # ---------------------------------------------------------------- builtins
    def builtin_call(self, b: Builtin, e: ast.Call, expected: Type | None) -> tir.Expr:
        if b.kind == "type":
            if not isinstance(b.type, (IntType, BoolType)):
                hint = (f"fields declared {b.name} read and write as u{b.name[2:]}: convert with "
                        f"`u{b.name[2:]}(x)`" if b.name.startswith("be") else "")
                self.fail(e.span, "type", f"`{b.name}` cannot be called", hint)
            (arg,) = self.args(e, 1, b.name, f"{b.name}(x)")
            return self.cast(self.value(arg), b.type, e.span)
        if b.kind == "int":
            self.fail(e.span, "type", "`int` has no fixed width",
                      "use a fixed-width type such as `u32(x)` or `i64(x)`")
        if b.kind == "map":
            self.fail(e.span, "map-decl", "maps are declared at module level",
                      f"write `name = {b.name}(...)` outside any function")
        if b.kind in ("hook", "timer_hook"):
            self.fail(e.span, "type", f"`{b.name}` is a decorator: write `@{b.name}` above a def")
        if b.kind != "helper":
            self.fail(e.span, "type", f"`{b.name}` cannot be called")
        name = b.name
        if name in ("now_ns", "cpu_id", "random_u32"):
            self.args(e, 0, name, f"{name}()")
            self.effect("helper", name + "()", e.span)
            return tir.Builtin(name, (), U64 if name == "now_ns" else U32, e.span)
        if name in ("min", "max"):
            return self.min_max(name, e, expected)
        if name in SEQ_OPS:
            a, b2 = self.args(e, 2, name, f"{name}(a, b)")
            va = self.coerce(self.value(a, U32), U32, a.span, f"`{name}` argument")
            vb = self.coerce(self.value(b2, U32), U32, b2.span, f"`{name}` argument")
            diff = tir.Convert(tir.Binary("-", va, vb, U32, e.span), I32, e.span)
            return tir.Compare(SEQ_OPS[name], diff, tir.Const(0, I32, e.span), e.span)
        if name in ATOMICS:
            return self.atomic(name, e)
        if name == "range":
            self.fail(e.span, "type", "`range` is only used in `for` loops")
        self.fail(e.span, "type", f"`{name}` cannot be called here")

    def min_max(self, name: str, e: ast.Call, expected: Type | None) -> tir.Expr:
        if e.keywords or len(e.args) < 2:
            self.fail(e.span, "type", f"`{name}` takes two or more integers",
                      f"call it as `{name}(a, b)` or `{name}(a, b, c)`")
        values = [self.value(a, expected) for a in e.args]
        acc = values[0]
        for v in values[1:]:
            acc, _, t = self.unify(acc, v, e.span, f"`{name}`")
        # Unify once more so every argument has the final type.
        t = acc.type if not isinstance(acc.type, UntypedInt) else UNTYPED
        if isinstance(t, UntypedInt):
            consts = [v.value for v in values if isinstance(v, tir.Const)]
            return tir.Const(min(consts) if name == "min" else max(consts), UNTYPED, e.span)
        if not isinstance(t, IntType):
            self.fail(e.span, "type", f"`{name}` takes integers, not {t}")
        args = tuple(self.coerce(v, t, v.span) for v in values)
        vals = [a.value for a in args if isinstance(a, tir.Const)]
        if len(vals) == len(args):
            return tir.Const(min(vals) if name == "min" else max(vals), t, e.span)
        return tir.MinMax(name, args, t, e.span)

    def atomic(self, name: str, e: ast.Call) -> tir.Expr:
        """`atomic_add(place, n)`, `atomic_xchg(place, new)`, `atomic_cas(place, expected,
        new)`: each gives the field's old value."""
        op, example = ATOMICS[name]
        args = self.args(e, 3 if op == "cas" else 2, name, example)
        target = args[0]
        loaded = self.value(target)
        if not isinstance(loaded, tir.Load):
            self.fail(target.span, "type", f"`{name}` needs a field or array element",
                      f"write `{example}`")
        t = loaded.type
        if not isinstance(t, IntType) or t.bits < 32 or loaded.place.type != t:
            self.fail(target.span, "type", f"atomics work on u32, u64, i32 or i64 fields, not "
                      f"{loaded.place.type}", "declare the counter as u32 or u64")
        if self.is_packet_ref(loaded.place.base):
            self.fail(target.span, "type", "atomics cannot update packet data",
                      "the verifier only allows atomics on map values and the stack")
        if isinstance(loaded.place, tir.IndexPlace) and not isinstance(loaded.place.index, tir.Const):
            self.fail(target.span, "bounds", f"`{name}` needs an element at a constant index",
                      "the element must provably exist: use a constant index, or a field")
        what = {"add": ["the amount"], "xchg": ["the new value"],
                "cas": ["the expected value", "the new value"]}[op]
        values = [self.coerce(self.value(a, t), t, a.span, w) for a, w in zip(args[1:], what, strict=True)]
        self.still_valid(loaded.place.base)
        expected = values[0] if op == "cas" else None
        return tir.Atomic(loaded.place, values[-1], t, e.span, op, expected)

    def map_origin(self, ref: tir.Expr) -> str | None:
        """The map when `ref` points into a hash-like map's entry."""
        while True:
            if isinstance(ref, tir.MapGet):
                return ref.map.name if ref.map.kind in REPLACING_MAPS else None
            if isinstance(ref, tir.VarRef):
                return self.flow.map_ref(ref.var)
            if isinstance(ref, tir.AddrOf):
                ref = ref.place.base
                continue
            return None

    def map_changed(self, m: MapType, span: Span) -> None:
        """An update or delete on a hash-like map: earlier references to it may be stale."""
        if m.kind in REPLACING_MAPS:
            assert self.fn is not None
            self.fn.function.effects.append(("map-update", m.name, span))
            self.flow = self.flow.map_updated(m.name, span)

    # ---------------------------------------------------------------- packets
    def packet_method(self, name: str, e: ast.Call) -> tir.Expr:
        if name == "header":
            h, off = self.args(e, 2, "pkt.header", "pkt.header(HeaderType, offset)")
            ht = self.resolve(h)
            if not isinstance(ht, StructType):
                self.fail(h.span, "type", "the first argument of `pkt.header` is a Header type",
                          "e.g. `pkt.header(Eth, 0)`")
            if ht.special_fields:
                self.fail(h.span, "type", f"`{ht.name}` holds a SpinLock or Timer; it cannot be a "
                          "packet view")
            offset = self.coerce(self.value(off, U32), U32, off.span, "the offset")
            self.effect("packet", "header", e.span)
            return tir.PacketHeader(ht, offset, OptionalType(ht), e.span)
        if name in ("resize_head", "resize_tail"):
            (delta,) = self.args(e, 1, f"pkt.{name}", f"pkt.{name}(bytes)")
            d = self.coerce(self.value(delta, I32), I32, delta.span, "the size change")
            if name == "resize_head" and not isinstance(d, tir.Const):
                self.fail(delta.span, "constant", "`pkt.resize_head` takes a constant size change",
                          "new head bytes are zeroed, which needs their count at compile time; "
                          "resize by the header's size, e.g. `pkt.resize_head(Tag.size)`")
            self.effect("helper", f"pkt.{name}()", e.span)
            self.effect("resize", name, e.span)
            node = tir.PacketResize(name[len("resize_"):], d, e.span)
            self.resized(e.span)
            return node
        if name == "checksum":
            if e.keywords:
                self.fail(e.keywords[0].span, "type", "`pkt.checksum` takes no keyword arguments")
            if len(e.args) not in (2, 3):
                self.fail(e.span, "type", "`pkt.checksum` takes 2 or 3 arguments (offset, "
                          f"length, seed), {len(e.args)} given",
                          "e.g. `pkt.checksum(Eth.size + 20, tcp_len, pseudo_sum)`: the range "
                          "from `offset`, `length` bytes, the seed added to the sum")
            parts = [self.coerce(self.value(a, U32), U32, a.span, what)
                     for a, what in zip(e.args, ("the offset", "the length", "the seed"))]
            seed = parts[2] if len(parts) == 3 else tir.Const(0, U32, e.span)
            self.effect("helper", "pkt.checksum()", e.span)
            self.stack(CHECKSUM_CHUNK + 8)
            return tir.PacketChecksum(parts[0], parts[1], seed, e.span)
        self.fail(e.func.span, "name", f"a Packet has no method `{name}`",
                  "available: header(H, offset), checksum(offset, length[, seed]), "
                  "resize_head(n), resize_tail(n)")

    # ---------------------------------------------------------------- maps
    def map_key(self, m: MapType, node: ast.Expr) -> tir.Expr:
        kt = m.key
        v = self.value(node, kt if isinstance(kt, IntType) else None)
        if isinstance(kt, StructType):
            if isinstance(v.type, OptionalType):
                self.none_error(node, v)
            if v.type is not kt:
                self.fail(node.span, "type", f"keys of `{m.name}` are {kt}, not {v.type}",
                          f"build one: `{kt.name}(...)`")
            return v
        assert kt is not None
        if not isinstance(v.type, (IntType, UntypedInt)):
            self.fail(node.span, "type", f"keys of `{m.name}` are {kt}, not {v.type}")
        self.stack(kt.size)
        return self.coerce(v, kt, node.span, f"the key of `{m.name}`")

    def map_value(self, m: MapType, node: ast.Expr) -> tir.Expr:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and m.value is not None \
                and self.module.lookup(node.func.id) is m.value:
            # A fresh value written straight into the map may hold a SpinLock or Timer:
            # they are zero bytes on the stack, and the kernel initialises them in the map.
            return self.construct(m.value, node, map_value=True)
        v = self.value(node)
        if isinstance(v.type, OptionalType):
            self.none_error(node, v)
        if v.type is not m.value:
            self.fail(node.span, "type", f"values of `{m.name}` are {m.value}, not {v.type}")
        if m.value is not None and m.value.special_fields:
            self.fail(node.span, "map-only", f"`{m.value.name}` holds a SpinLock or Timer, which "
                      "a helper cannot copy out of a map value",
                      f"write a fresh value, `{m.name}.set(key, {m.value.name}(...))`, or copy the "
                      "fields one by one")
        return v

    def map_method(self, m: MapType, name: str, e: ast.Call) -> tir.Expr:
        kind = m.kind
        keyed = kind in ("HashMap", "LruHashMap", "PerCpuHashMap", "ArrayMap", "PerCpuArray")
        if keyed and name == "get":
            (k,) = self.args(e, 1, f"{m.name}.get", f"{m.name}.get(key)")
            key = self.map_key(m, k)
            self.effect("helper", f"{m.name}.get()", e.span)
            assert m.value is not None
            return tir.MapGet(m, key, OptionalType(m.value), e.span)
        if keyed and name in ("set", "insert", "replace"):
            k, v = self.args(e, 2, f"{m.name}.{name}", f"{m.name}.{name}(key, value)")
            flags = {"set": 0, "insert": 1, "replace": 2}[name]
            if m.is_array and flags == 1:
                self.fail(e.span, "map-op", "array slots always exist: `insert` would always fail",
                          f"use `{m.name}.set(index, value)`")
            return self.map_set(m, k, v, flags, e.span)
        if keyed and name == "delete":
            (k,) = self.args(e, 1, f"{m.name}.delete", f"{m.name}.delete(key)")
            if m.is_array:
                self.fail(e.span, "map-op", "array entries cannot be deleted",
                          "set the slot to a zeroed value instead")
            key = self.map_key(m, k)
            self.effect("helper", f"{m.name}.delete()", e.span)
            self.map_changed(m, e.span)
            return tir.MapDelete(m, key, e.span)
        if kind == "Queue" and name == "push":
            (v,) = self.args(e, 1, f"{m.name}.push", f"{m.name}.push(value)")
            value = self.map_value(m, v)
            self.effect("helper", f"{m.name}.push()", e.span)
            return tir.QueuePush(m, value, e.span)
        if kind == "Queue" and name == "pop":
            self.args(e, 0, f"{m.name}.pop", f"{m.name}.pop()")
            assert m.value is not None
            self.stack(m.value.size)
            self.effect("helper", f"{m.name}.pop()", e.span)
            return tir.QueuePop(m, OptionalType(m.value), e.span)
        if kind == "RingBuf" and name == "output":
            (v,) = self.args(e, 1, f"{m.name}.output", f"{m.name}.output(value)")
            value = self.map_value(m, v)
            self.effect("helper", f"{m.name}.output()", e.span)
            return tir.RingOutput(m, value, e.span)
        if kind in ("XskMap", "DevMap") and name == "redirect":
            k, fb = self.args(e, 2, f"{m.name}.redirect",
                              f"{m.name}.redirect(key, XDP_PASS)")
            key = self.coerce(self.value(k, U32), U32, k.span, "the redirect key")
            fallback = self.constant(fb, U32)
            if fallback.value not in (0, 1, 2):
                self.fail(fb.span, "hook-return", "the fallback of `redirect` must be XDP_ABORTED, "
                          "XDP_DROP or XDP_PASS", "the kernel only accepts these as the fallback")
            self.effect("helper", f"{m.name}.redirect()", e.span)
            self.effect("redirect", m.name, e.span)
            return tir.Redirect(m, key, tir.Const(fallback.value, U32, fb.span), U32, e.span)
        ops = {"HashMap": "get, set, insert, replace, delete", "LruHashMap": "get, set, insert, "
               "replace, delete", "PerCpuHashMap": "get, set, insert, replace, delete",
               "ArrayMap": "get, set, replace", "PerCpuArray": "get, set, replace",
               "Queue": "push, pop", "RingBuf": "output", "XskMap": "redirect",
               "DevMap": "redirect"}[kind]
        self.fail(e.func.span, "map-op", f"{kind} `{m.name}` has no method `{name}`",
                  f"a {kind} supports: {ops}")

    def map_set(self, m: MapType, k: ast.Expr, v: ast.Expr, flags: int, span: Span) -> tir.Expr:
        if m.kind in ("Queue", "RingBuf", "XskMap", "DevMap"):
            self.fail(span, "map-op", f"{m.kind} `{m.name}` cannot be assigned by key",
                      "XskMap and DevMap slots are set from user space")
        key = self.map_key(m, k)
        value = self.map_value(m, v)
        self.effect("helper", f"{m.name}.set()", span)
        self.map_changed(m, span)
        return tir.MapSet(m, key, value, flags, span)

    # ---------------------------------------------------------------- timers
    def timer_method(self, timer: tir.Expr, func: ast.Attribute, e: ast.Call) -> tir.Expr:
        assert isinstance(timer, tir.AddrOf)
        if not isinstance(timer.type, TimerType):
            self.fail(func.span, "type", f"a SpinLock has no method `{func.attr}`",
                      "take it with `with v.lock:`")
        place = timer.place
        if not isinstance(place, tir.FieldPlace) or not isinstance(place.base.type, StructType):
            self.fail(func.span, "timer", "a Timer must be a field of a map value")
        assert isinstance(place, tir.FieldPlace)
        owner = place.base.type
        assert isinstance(owner, StructType)
        assert self.fn is not None
        maps = [m for m in self.fn.checker.all_maps() if m.value is owner]
        if len(maps) != 1:
            where = ", ".join(m.name for m in maps) or "no map"
            self.fail(func.span, "timer", f"the timer's struct `{owner.name}` is the value of "
                      f"{where}; it must be the value of exactly one map",
                      "give each map its own value struct")
        handler = self.fn.checker.timer_handler(owner, place.field)
        if func.attr == "start":
            (delay,) = self.args(e, 1, "start", f"v.{place.field.name}.start(delay_ns)")
            d = self.coerce(self.value(delay, U64), U64, delay.span, "the delay")
            if handler is None:
                self.fail(func.span, "timer", f"no handler is defined for `{owner.name}."
                          f"{place.field.name}`",
                          f"add `@timer({owner.name}.{place.field.name})` above a "
                          "`def handler(key, value) -> None`")
            self.effect("helper", "Timer.start()", e.span)
            return tir.TimerStart(place, maps[0], handler, d, e.span)
        if func.attr == "cancel":
            self.args(e, 0, "cancel", f"v.{place.field.name}.cancel()")
            self.effect("helper", "Timer.cancel()", e.span)
            return tir.TimerCancel(place, maps[0], e.span)
        self.fail(func.span, "name", f"a Timer has no method `{func.attr}`",
                  "a Timer has `.start(delay_ns)` and `.cancel()`")

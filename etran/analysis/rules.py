"""Verifier-aware rules that need the whole program: calls, stack, hooks, budget.

Each rule is what the kernel verifier would refuse, said in the language's terms:

* recursion is refused (the verifier rejects back-edges in the call graph),
  and calls may nest at most 8 deep (the kernel's MAX_CALL_FRAMES);
* a hook may use at most 512 bytes of stack (MAX_BPF_STACK); functions are
  inlined, so a hook's stack is its own plus that of every inlined call. That sum
  counts every struct for the whole hook, though LLVM shares slots between structs
  not alive at once: a hook it puts over the limit gets a second opinion, the frame of
  the compiled hook (`frame`), as the budget does;
* a @timer handler runs in softirq context without a packet: it cannot
  redirect (the verifier accepts the helper, but there is no frame to send);
* @egress and @gen run as test runs of the runtime (etran.runtime.hooks), which
  honour a redirect only as "back to the application": a DevMap redirect there
  would be taken for one, so it is refused;
The budget (each hook's estimated verifier work) is the next pass,
`etran.analysis.budget`; `etran.pipeline` runs the two in that order.
"""
from __future__ import annotations

from collections.abc import Callable

from etran.analysis.stack import MAX_STACK, SPILL_MARGIN, stack_bytes, struct_stack_bytes
from etran.dsl.diagnostics import DiagnosticSink, Span
from etran.ir import tir

MAX_CALL_DEPTH = 8


def check_rules(program: tir.Program, sink: DiagnosticSink,
                frame: Callable[[str], int | None] | None = None) -> bool:
    """Report every rule `program` breaks; False when the call graph has a cycle
    (then depth, stack and budget are meaningless and were not looked at). `frame(hook)`,
    when given, is the stack the compiled hook uses (None if it could not be compiled):
    asked only of a hook whose estimate is over the limit, and the hook's verdict."""
    _recursion(program, sink)
    if sink.has_errors:
        return False
    for hook in program.hooks:
        _call_depth(hook, sink)
        _stack(hook, sink, frame)
        _hook_effects(program, hook, sink)
    return True


def _recursion(program: tir.Program, sink: DiagnosticSink) -> None:
    in_cycle: set[int] = set()
    for fn in program.functions:
        if id(fn) in in_cycle:
            continue  # one message per cycle
        path = _cycle_from(fn, fn, [])
        if path is None:
            continue
        in_cycle.update(id(f) for f, _ in path)
        names = " -> ".join([fn.name] + [callee.name for callee, _ in path])
        sink.error(path[-1][1], "recursion", f"`{fn.name}` calls itself ({names})",
                   "the verifier rejects recursion: rewrite it as a bounded `for` loop")


def _cycle_from(target: tir.Function, f: tir.Function, seen: list[tir.Function]
                ) -> list[tuple[tir.Function, Span]] | None:
    """The call path from `f` back to `target`, as (callee, call span) steps, if any."""
    for callee, span in f.call_sites:
        if callee is target:
            return [(callee, span)]
        if callee in seen:
            continue
        seen.append(callee)
        rest = _cycle_from(target, callee, seen)
        if rest is not None:
            return [(callee, span)] + rest
    return None


def _call_depth(hook: tir.Function, sink: DiagnosticSink) -> None:
    def depth(f: tir.Function, chain: list[str]) -> bool:
        for callee, span in f.call_sites:
            nxt = chain + [callee.name]
            if len(nxt) > MAX_CALL_DEPTH:
                sink.error(span, "call-depth",
                           f"calls nest {len(nxt)} deep here ({' -> '.join(nxt)}); "
                           f"the kernel allows {MAX_CALL_DEPTH}",
                           "flatten the call chain: merge small functions into their callers")
                return True
            if depth(callee, nxt):
                return True
        return False

    depth(hook, [hook.name])


def _stack(hook: tir.Function, sink: DiagnosticSink,
           frame: Callable[[str], int | None] | None) -> None:
    total = stack_bytes(hook)
    if total <= MAX_STACK:
        return
    compiled = frame(hook.name) if frame is not None else None
    if compiled is not None and compiled <= MAX_STACK:
        return                       # LLVM shares the slots of structs not alive at once
    parts = [f"`{hook.name}` itself: {hook.stack_bytes} bytes"] + \
        [f"`{c.name}` (line {s.line}): {struct_stack_bytes(c)} bytes"
         for c, s in hook.call_sites if struct_stack_bytes(c)] + \
        [f"register spills: about {SPILL_MARGIN} bytes"]
    sink.error(hook.name_span or hook.span, "stack", f"`{hook.name}` needs about {total} bytes "
               f"of stack; the kernel allows {MAX_STACK}",
               "structs built in a function live on the stack: " + "; ".join(parts),
               "keep large structs in a map (e.g. a PerCpuArray used as scratch space)")


def _hook_effects(program: tir.Program, hook: tir.Function, sink: DiagnosticSink) -> None:
    if hook.hook in ("egress", "gen"):
        for kind, name, span in hook.effects:
            if kind == "redirect" and _map_kind(program, name) == "DevMap":
                sink.error(span, "hook-helper", f"`{name}.redirect()` is not allowed in an "
                           f"@{hook.hook} hook: the runtime runs it as a test run, where a "
                           "redirect can only hand the frame back to the application",
                           "return XDP_TX to send the frame out of the host's interface, or "
                           "redirect to the application's XskMap")
        return
    if hook.hook != "timer":
        return
    for kind, name, span in hook.effects:
        if kind == "redirect":
            sink.error(span, "hook-helper", f"`{name}.redirect()` is not allowed in a @timer "
                       "handler: a timer runs without a packet",
                       "set a flag in the map and let the @gen hook send the frame")


def _map_kind(program: tir.Program, name: str) -> str | None:
    try:
        return program.map(name).kind
    except KeyError:
        return None

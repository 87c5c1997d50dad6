"""Flow facts the checker tracks along every path through a function body.

* which variables are definitely assigned (reading one that may be unassigned
  is an error, as in Python);
* which `Optional` variables are known not to be None (narrowed by `is None`
  checks; the verifier demands the same before a map value is used);
* which variables hold packet views: every `pkt.resize_head/resize_tail`
  makes the views taken before it stale, exactly as the verifier forgets
  packet ranges after the helper call; and which of them are packet views on
  some paths only (a runtime index into one cannot be compiled: an element of
  a view needs a check against the packet's end, a value on the stack must not
  get one);
* which variables hold references into hash-like maps: an update or delete on
  such a map can free or replace the element (the kernel links in a new one
  and recycles the old), so references taken before it become stale too.

Facts meet at control-flow joins: a variable is assigned, narrowed or a
valid reference after an `if` only if it is on both arms; it is stale if it
is stale on either.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from etran.dsl.diagnostics import Span
from etran.ir.tir import Var

# Why a reference went stale: ("resize", "") or ("map", map name), and where.
Staleness = tuple[str, str, Span]


@dataclass(frozen=True, slots=True)
class Flow:
    assigned: frozenset[Var] = frozenset()
    nonnull: frozenset[Var] = frozenset()
    views: frozenset[Var] = frozenset()                        # valid packet views
    mixed: frozenset[Var] = frozenset()                        # views on some paths only
    map_refs: frozenset[tuple[Var, str]] = frozenset()         # valid (reference, map)
    stale: frozenset[tuple[Var, Staleness]] = frozenset()
    reachable: bool = True

    def _forget(self, var: Var, assigned: frozenset[Var]) -> Flow:
        """These facts with `assigned`, `var` not narrowed, and nothing known of what it
        held. Built directly rather than by `dataclasses.replace` (the checker assigns at
        almost every statement), and the sets of references rebuilt only when `var` is in
        them."""
        return Flow(assigned, self.nonnull - {var}, self.views - {var}, self.mixed - {var},
                    frozenset(r for r in self.map_refs if r[0] is not var)
                    if any(r[0] is var for r in self.map_refs) else self.map_refs,
                    frozenset(s for s in self.stale if s[0] is not var)
                    if any(s[0] is var for s in self.stale) else self.stale,
                    self.reachable)

    def assign(self, var: Var) -> Flow:
        return self._forget(var, self.assigned | {var})

    def narrow(self, var: Var) -> Flow:
        return replace(self, nonnull=self.nonnull | {var})

    def set_view(self, var: Var, partial: bool = False) -> Flow:
        """`var` holds a packet view (`partial`: on some paths, another reference on others)."""
        return replace(self, views=self.views | {var},
                       mixed=self.mixed | {var} if partial else self.mixed)

    def is_view(self, var: Var) -> bool:
        return var in self.views or any(v is var and why[0] == "resize" for v, why in self.stale)

    def is_mixed(self, var: Var) -> bool:
        return var in self.mixed

    def set_map_ref(self, var: Var, name: str) -> Flow:
        return replace(self, map_refs=self.map_refs | {(var, name)})

    def map_ref(self, var: Var) -> str | None:
        for v, name in self.map_refs:
            if v is var:
                return name
        return None

    def stale_reason(self, var: Var) -> Staleness | None:
        for v, why in self.stale:
            if v is var:
                return why
        return None

    def resized(self, span: Span) -> Flow:
        """The packet moved: every view taken so far is stale."""
        return replace(self, views=frozenset(), mixed=frozenset(),
                       stale=self.stale | {(v, ("resize", "", span)) for v in self.views})

    def map_updated(self, name: str, span: Span) -> Flow:
        """An entry of `name` was replaced or freed: references into it are stale."""
        gone = {r for r in self.map_refs if r[1] == name}
        return replace(self, map_refs=self.map_refs - gone,
                       stale=self.stale | {(v, ("map", name, span)) for v, _ in gone})

    def dead(self) -> Flow:
        return replace(self, reachable=False)

    def without(self, var: Var) -> Flow:
        """`var` unassigned again (a loop counter at the top of each iteration)."""
        return self._forget(var, self.assigned - {var})


def join(a: Flow, b: Flow) -> Flow:
    """The facts that hold after two paths meet."""
    if not a.reachable:
        return b
    if not b.reachable:
        return a
    stale = a.stale | b.stale
    stale_vars = {v for v, _ in stale}
    # A view on one path and another reference on the other: a view on some paths only.
    one_sided = {v for v in a.views ^ b.views if v in a.assigned and v in b.assigned
                 and not (a.is_view(v) and b.is_view(v))}
    return Flow(assigned=a.assigned & b.assigned,
                nonnull=a.nonnull & b.nonnull,
                views=(a.views | b.views) - stale_vars,
                mixed=(a.mixed | b.mixed | one_sided) - stale_vars,
                map_refs=frozenset(r for r in a.map_refs | b.map_refs if r[0] not in stale_vars),
                stale=stale,
                reachable=True)


def join_all(flows: list[Flow]) -> Flow:
    live = [f for f in flows if f.reachable]
    if not live:
        return flows[0].dead() if flows else Flow(reachable=False)
    out = live[0]
    for f in live[1:]:
        out = join(out, f)
    return out

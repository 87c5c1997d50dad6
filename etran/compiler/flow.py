"""Flow facts the checker tracks along every path through a function body.

* which variables are definitely assigned (reading one that may be unassigned
  is an error, as in Python);
* which `Optional` variables are known not to be None (narrowed by `is None`
  checks; the verifier demands the same before a map value is used);
* which variables hold packet views, and the packet "epoch" each was taken
  in: every `pkt.resize_head/resize_tail` starts a new epoch and invalidates
  older views, exactly as the verifier forgets packet ranges after the
  helper call.

Facts meet at control-flow joins by intersection (a fact holds after an `if`
only if it holds on both arms).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from etran.compiler.tir import Var


@dataclass(frozen=True, slots=True)
class Flow:
    assigned: frozenset[Var] = frozenset()
    nonnull: frozenset[Var] = frozenset()
    views: tuple[tuple[Var, int], ...] = ()
    epoch: int = 0
    reachable: bool = True

    def assign(self, var: Var) -> Flow:
        return replace(self, assigned=self.assigned | {var},
                       nonnull=self.nonnull - {var},
                       views=tuple(v for v in self.views if v[0] is not var))

    def narrow(self, var: Var) -> Flow:
        return replace(self, nonnull=self.nonnull | {var})

    def set_view(self, var: Var, epoch: int) -> Flow:
        return replace(self, views=tuple(v for v in self.views if v[0] is not var) + ((var, epoch),))

    def view_epoch(self, var: Var) -> int | None:
        for v, e in self.views:
            if v is var:
                return e
        return None

    def resized(self) -> Flow:
        return replace(self, epoch=self.epoch + 1)

    def dead(self) -> Flow:
        return replace(self, reachable=False)


def join(a: Flow, b: Flow) -> Flow:
    """The facts that hold after two paths meet."""
    if not a.reachable:
        return b
    if not b.reachable:
        return a
    views: dict[Var, int] = {}
    for var, e in a.views + b.views:
        views[var] = min(e, views.get(var, e))
    return Flow(assigned=a.assigned & b.assigned,
                nonnull=a.nonnull & b.nonnull,
                views=tuple(views.items()),
                epoch=max(a.epoch, b.epoch),
                reachable=True)


def join_all(flows: list[Flow]) -> Flow:
    live = [f for f in flows if f.reachable]
    if not live:
        return flows[0].dead() if flows else Flow(reachable=False)
    out = live[0]
    for f in live[1:]:
        out = join(out, f)
    return out

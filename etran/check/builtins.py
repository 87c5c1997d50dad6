"""The names the language provides (`from etran.dsl import *`), as the checker sees them.

`etran/dsl/__init__.py` gives the same names to Python tools; a test keeps
the two lists equal.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from etran.abi import XDP_ACTIONS
from etran.ir.types import BE_TYPES, BOOL, INT_TYPES, MAP_KINDS, PACKET, SPINLOCK, TIMER, Type


@dataclass(frozen=True, slots=True)
class Builtin:
    """A provided name. `kind` says how the checker treats it."""

    name: str
    kind: str            # "type" | "array" | "base" | "map" | "hook" | "timer_hook" | "helper" | "const"
    type: Type | None = None
    value: int = 0



HELPERS = ("now_ns", "cpu_id", "random_u32", "atomic_add", "atomic_xchg", "atomic_cas",
           "seq_after", "seq_before", "seq_after_eq", "seq_before_eq")

# Python builtins that keep their meaning: usable without the star import.
PYTHON_BUILTINS = ("bool", "min", "max", "range", "int")


def _table() -> dict[str, Builtin]:
    t: dict[str, Builtin] = {}
    scalars: dict[str, Type] = {**INT_TYPES, **BE_TYPES}
    for name, ty in scalars.items():
        t[name] = Builtin(name, "type", ty)
    t["bool"] = Builtin("bool", "type", BOOL)
    t["SpinLock"] = Builtin("SpinLock", "type", SPINLOCK)
    t["Timer"] = Builtin("Timer", "type", TIMER)
    t["Packet"] = Builtin("Packet", "type", PACKET)
    t["Array"] = Builtin("Array", "array")
    t["Struct"] = Builtin("Struct", "base")
    t["Header"] = Builtin("Header", "base")
    for kind in MAP_KINDS:
        t[kind] = Builtin(kind, "map")
    for hook in ("xdp", "egress", "gen"):
        t[hook] = Builtin(hook, "hook")
    t["timer"] = Builtin("timer", "timer_hook")
    for h in HELPERS + ("min", "max", "range"):
        t[h] = Builtin(h, "helper")
    t["int"] = Builtin("int", "int")
    for name, v in XDP_ACTIONS.items():
        t[name] = Builtin(name, "const", None, v)
    return t


BUILTINS = _table()

# What `from etran.dsl import *` brings in (everything but Python's own builtins).
DSL_EXPORTS = tuple(n for n in BUILTINS if n not in PYTHON_BUILTINS)


def unknown_name_hint(name: str, known: list[str]) -> str:
    """What to do about a name that is not defined: import it from etran.dsl (a name of the
    language) or from the bundled headers (`Tcp`, `ipv4_checksum`, `TCP_SYN`...), or a
    close spelling among the names `known` where it was used."""
    import difflib
    if name in BUILTINS:
        return "add `from etran.dsl import *` at the top of the file"
    if name in template_names():
        return f"it is in the bundled headers: add `from {TEMPLATES} import {name}`"
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"did you mean `{close[0]}`?"
    return "define it at module level, or check the spelling"


TEMPLATES = "etran.bpf_templates.headers"


@functools.cache
def template_names() -> frozenset[str]:
    """The names the bundled header module defines at its top level (read from its text
    when a name is first missing, not at every check, and once per process)."""
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "bpf_templates" / "headers.py").read_text()
    return frozenset(m.group(1) or m.group(2) for m in
                     re.finditer(r"^(?:def|class)\s+(\w+)|^([A-Za-z_]\w*)\s*[:=]", text, re.M))

"""Keep the code of the methods `dataclasses` writes, compiled, between processes.

Start-up is most of a command's time (`bench/compile.py`): `etran check` spends a third of
its 150 ms creating the 120 dataclasses of the syntax tree, the typed program and the
back end, and most of that compiling the source of the ~650 methods (`__init__`,
`__eq__`, `__hash__`, ...) that `dataclasses` generates as text and runs through
`exec`. The text of a class's methods is the same in every process, so its compiled code
can be kept like a `.pyc`: `install` wraps `dataclasses._create_fn` so that it execs the
code compiled for the same text (the text is the key, so a stale entry is never used,
only never hit), and at exit writes the entries this process compiled to
`etran/__pycache__/dataclass-code.<tag>.marshal`, next to etran's own bytecode, when
Python may write bytecode there. Running the compiled code is what `exec(text)` does, so
the classes are the same either way. Only on CPython 3.11, whose `_create_fn` this
copies; elsewhere (or when the file is unreadable) nothing changes but the speed.
"""
from __future__ import annotations

import atexit
import dataclasses
import marshal
import os
import sys
from pathlib import Path
from types import CodeType
from typing import Any

_MAX_ENTRIES = 4000     # past this the file starts afresh (texts of classes long gone)
_PATH = Path(__file__).resolve().parent / "__pycache__" / \
    f"dataclass-code.{sys.implementation.cache_tag}.marshal"
_code: dict[str, CodeType] = {}
_new = 0
_ORIGINAL = getattr(dataclasses, "_create_fn", None)    # what `install` replaces


def _load() -> None:
    try:
        data = marshal.loads(_PATH.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return
    if isinstance(data, dict):
        _code.update((k, v) for k, v in data.items()
                     if isinstance(k, str) and isinstance(v, CodeType))


def _save() -> None:
    if not _new or sys.dont_write_bytecode:
        return
    entries = dict(_code)
    try:    # what other processes added since this one read the file
        old = marshal.loads(_PATH.read_bytes())
        if isinstance(old, dict) and len(old) + len(entries) <= _MAX_ENTRIES:
            entries = {**old, **entries}
    except (OSError, ValueError, EOFError, TypeError):
        pass
    tmp = _PATH.with_name(f"{_PATH.name}.{os.getpid()}.tmp")
    try:
        _PATH.parent.mkdir(exist_ok=True)
        tmp.write_bytes(marshal.dumps(entries))
        os.replace(tmp, _PATH)     # atomic: concurrent processes each write a whole file
    except OSError:
        tmp.unlink(missing_ok=True)


def _create_fn(name: str, args: list[str], body: list[str], *, globals: Any = None,
               locals: Any = None, return_type: Any = dataclasses.MISSING) -> Any:
    """dataclasses._create_fn of CPython 3.11, with the compiled text kept."""
    global _new
    if locals is None:
        locals = {}
    return_annotation = ""
    if return_type is not dataclasses.MISSING:
        locals["_return_type"] = return_type
        return_annotation = "->_return_type"
    joined = ",".join(args)
    lines = "\n".join(f"  {b}" for b in body)
    txt = f" def {name}({joined}){return_annotation}:\n{lines}"
    txt = f"def __create_fn__({', '.join(locals.keys())}):\n{txt}\n return {name}"
    code = _code.get(txt)
    if code is None:
        code = _code[txt] = compile(txt, "<string>", "exec")
        _new += 1
    ns: dict[str, Any] = {}
    exec(code, dataclasses.__dict__ if globals is None else globals, ns)
    return ns["__create_fn__"](**locals)


def install() -> None:
    """Wrap dataclasses._create_fn (once), on the Python version whose function it copies."""
    if _ORIGINAL is None or getattr(dataclasses, "_create_fn", None) is not _ORIGINAL or \
            sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 11):
        return
    _load()
    dataclasses._create_fn = _create_fn  # type: ignore[attr-defined]
    atexit.register(_save)

"""The runtime: load compiled BPF objects into the running kernel and talk to them.

Only :mod:`etran.runtime.libbpf` makes foreign calls; everything here deals in ints and bytes.
The names below are imported on first use (PEP 562), so that importing one submodule
(``etran.runtime.errors`` for the command line's error handling) does not load libbpf.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from etran.runtime.errors import BpfError, EtranRuntimeError, NotSupported, VerifierError
    from etran.runtime.loader import (
        LoadedObject,
        Map,
        Program,
        RingBufferReader,
        TestRunResult,
        VerifierStats,
        XdpContext,
        check_kernel_support,
        ensure_bpffs,
        get_pinned,
        load_object,
        pin,
        possible_cpus,
    )

_ERRORS = ("BpfError", "EtranRuntimeError", "NotSupported", "VerifierError")
_LOADER = ("LoadedObject", "Map", "Program", "RingBufferReader", "TestRunResult",
           "VerifierStats", "XdpContext", "check_kernel_support", "ensure_bpffs",
           "get_pinned", "load_object", "pin", "possible_cpus")

__all__ = [
    "BpfError", "EtranRuntimeError", "LoadedObject", "Map",
    "NotSupported", "Program", "RingBufferReader", "TestRunResult", "VerifierError",
    "VerifierStats", "XdpContext", "check_kernel_support", "ensure_bpffs", "get_pinned",
    "load_object", "pin", "possible_cpus",
]


def __getattr__(name: str) -> Any:
    if name in _ERRORS:
        return getattr(importlib.import_module("etran.runtime.errors"), name)
    if name in _LOADER:
        return getattr(importlib.import_module("etran.runtime.loader"), name)
    raise AttributeError(f"module 'etran.runtime' has no attribute {name!r}")

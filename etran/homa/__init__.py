"""Homa for applications: `HomaStack(topology, host)`, its `Client` and `Server`; inside a
host of `etran up etran/transports/homa.py`, `etran.homa.app` (the host's daemon holds the
data path, the application only its RPCs).

The data path is `etran/transports/homa.py`; docs/homa.md explains the split.
"""
from typing import Any

__all__ = ["Client", "HomaStack", "Request", "Server"]


def __getattr__(name: str) -> Any:
    """The stack's classes, imported when first asked for: an application of the host's
    daemon (`etran.homa.app`) and `etran status` load no data-path code (libbpf, the
    compiler), which took 0.26 s to import."""
    if name in __all__:
        from etran.homa import stack
        return getattr(stack, name)
    raise AttributeError(f"module 'etran.homa' has no attribute {name!r}")

"""Homa for applications: `HomaStack(topology, host)`, its `Client` and `Server`; inside a
host of `etran up etran/transports/homa.py`, `etran.homa.app` (the host's daemon holds the
data path, the application only its RPCs).

The data path is `etran/transports/homa.py`; docs/homa.md explains the split.
"""
from etran.homa.stack import Client, HomaStack, Request, Server

__all__ = ["Client", "HomaStack", "Request", "Server"]

"""Homa for applications: `HomaStack(topology, host)`, its `Client` and `Server`.

The data path is `etran/transports/homa.py`; docs/homa.md explains the split.
"""
from etran.homa.stack import Client, HomaStack, Request, Server

__all__ = ["Client", "HomaStack", "Request", "Server"]

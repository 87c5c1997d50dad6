"""TCP written in etran's language, with a socket-like API for applications.

An application inside a host of `etran up etran/transports/tcp.py` uses the host's daemon,
which holds the data path (`etran.tcp.app`, `etran.tcp.hostd`); it needs no privilege:

    with etran.tcp.connect(("10.111.0.2", 5001), timeout=5) as sock:
        sock.sendall(b"hello")
        print(sock.recv(100))

A process may also run a host's stack itself (it then holds the maps and the host's AF_XDP
queue; tests and benchmarks do):

    with Topology("two-hosts") as topo, TcpStack(topo, "a") as stack:
        with stack.connect(("10.111.0.2", 5001)) as sock:
            sock.sendall(b"hello")
            print(sock.recv(100))

Errors are the socket module's own OSError subclasses (ConnectionRefusedError,
ConnectionResetError, TimeoutError, BrokenPipeError), with errno set.

The data path is `etran/transports/tcp.py` (ingress, egress and ACK generation in the
kernel); the control plane and the sockets are `etran.tcp.stack`; docs/tcp.md explains the
split and what is not done yet.
"""

from typing import Any

from etran.tcp.app import AppListener, AppSocket, connect, listen

__all__ = ["AppListener", "AppSocket", "TcpListener", "TcpSocket", "TcpStack", "connect",
           "listen"]


def __getattr__(name: str) -> Any:
    """The stack's classes, imported when first asked for: an application that only uses
    `connect` and `listen` loads no data-path code (libbpf, the compiler)."""
    if name in ("TcpListener", "TcpSocket", "TcpStack"):
        from etran.tcp import stack
        return getattr(stack, name)
    raise AttributeError(f"module 'etran.tcp' has no attribute {name!r}")

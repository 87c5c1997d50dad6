"""TCP written in etran's language, with a socket-like API for applications.

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

from etran.tcp.stack import TcpListener, TcpSocket, TcpStack

__all__ = ["TcpListener", "TcpSocket", "TcpStack"]

"""Network namespaces: create, remove and list them, and enter one from the current thread.

A host of a topology is a named network namespace bound at ``/run/netns/NAME``, the place
``ip netns`` uses, so ``ip -n NAME link`` and ``ip netns exec NAME ...`` work on it.

Why a thread-level ``enter``: setns(2) with CLONE_NEWNET switches only the calling thread, and
several kernel operations resolve names and interface indexes in the namespace of the thread
(or socket) doing them: creating an AF_XDP socket (it binds in the namespace it was created
in), XSKMAP/DEVMAP updates, BPF_LINK_CREATE on an ifindex, opening a netlink socket, writing
``/proc/sys/net``. Everything else (maps, programs, test runs of non-live programs) does not
care which namespace the thread is in.

Namespace creation forks through pyroute2 (``unshare`` cannot be done by one thread of a
threaded process without affecting it) and costs about 5 ms.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from etran.runtime.errors import EtranRuntimeError, NotSupported

if TYPE_CHECKING:
    from pyroute2 import IPRoute

# pyroute2 costs about 100 ms to import; commands that never touch a namespace (check,
# build, disasm) must not pay it, so it is imported where a namespace is first used.

NETNS_DIR = "/run/netns"
_OWN_NAMESPACE = "/proc/thread-self/ns/net"
CLONE_NEWNET = 0x40000000


@dataclass(frozen=True, slots=True)
class Interface:
    """A network interface inside a named namespace (``netns`` None: the current one)."""

    netns: str | None
    name: str
    ifindex: int

    def __str__(self) -> str:
        return f"{self.name} in {self.netns}" if self.netns else self.name

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """The calling thread inside the interface's namespace (a no-op for None)."""
        if self.netns is None:
            yield
        else:
            with enter(self.netns):
                yield


def path(name: str) -> str:
    """Where the namespace ``name`` is bound."""
    return os.path.join(NETNS_DIR, name)


def exists(name: str) -> bool:
    return os.path.exists(path(name))


def list_names(prefix: str = "") -> list[str]:
    """Names of the bound network namespaces that start with ``prefix``, sorted."""
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def create(name: str) -> None:
    """Create and bind the network namespace ``name`` (like ``ip netns add``)."""
    action = f"create network namespace {name}"
    if exists(name):
        raise EtranRuntimeError(action, "it already exists; remove it with `etran down` or "
                                f"`ip netns del {name}`")
    from pyroute2 import netns as pyroute2_netns
    try:
        pyroute2_netns.create(name)
    except OSError as exc:
        _raise_for(action, exc)
    except Exception as exc:  # pyroute2 re-raises a child's failure in several shapes
        raise EtranRuntimeError(action, f"{type(exc).__name__}: {exc}") from exc
    if not exists(name):
        raise EtranRuntimeError(action, "pyroute2 reported success but the namespace is not "
                                f"bound at {path(name)}")


def remove(name: str) -> bool:
    """Delete every link inside ``name`` (veths take their peers with them), then unbind it.

    Deleting the links first means they disappear even if some socket still holds the
    namespace alive. False when there was no such namespace.
    """
    if not exists(name):
        return False
    try:
        with netlink(name) as ipr:
            for link in ipr.get_links():
                if link.get_attr("IFLA_IFNAME") != "lo":
                    with contextlib.suppress(Exception):  # a veth peer may already be gone
                        ipr.link("del", index=link["index"])
    except (OSError, EtranRuntimeError):
        pass  # the namespace may be half gone; unbinding it below is what matters
    from pyroute2 import netns as pyroute2_netns
    try:
        pyroute2_netns.remove(name)
    except FileNotFoundError:
        return False
    except OSError as exc:
        _raise_for(f"remove network namespace {name}", exc)
    return True


_libc: ctypes.CDLL | None = None


def _setns(fd: int) -> None:
    """setns(2) into the network namespace open at ``fd`` (os.setns is Python 3.12+)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class _Handle:
    """An open namespace file, closed when the last reference goes (a thread's home)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.ino = _identity(fd)
        _homes.add(self)

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _identity(fd: int) -> tuple[int, int]:
    """What tells two open namespace files apart: the same namespace has one inode."""
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


class _Where(threading.local):
    """Per thread: the namespace it started in, opened once, and the namespaces it is in
    now through `Entry.entered`, innermost last, each as (fd, identity). Every namespace
    switch of the process goes through `Entry.entered`, so with nothing entered the thread
    is at home, and leaving a namespace goes back to the one entered before it, or home."""

    def __init__(self) -> None:
        self.home: _Handle | None = None
        self.entered: list[tuple[int, tuple[int, int]]] = []


_where = _Where()
_homes: weakref.WeakSet[_Handle] = weakref.WeakSet()


def thread_homes() -> set[int]:
    """The file descriptors held open as threads' own namespaces (one per thread that
    entered a namespace, until the thread ends): kept on purpose, not leaked."""
    return {h.fd for h in list(_homes)}


class Entry:
    """An open handle on namespace ``name`` for entering it often: each enter and leave then
    costs two setns(2) calls and no path lookup (about 7 us instead of 14 us here; the
    thread's own namespace is opened once per thread, not on every entry: 11 us).

    While the handle is open it keeps the namespace alive (its devices too), so close it
    (``close()`` or ``with``) before the namespace is torn down.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        try:
            self._fd = os.open(path(name), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise EtranRuntimeError(f"enter network namespace {name}",
                                    "no such namespace; is the topology still up?") from None
        self._ino = _identity(self._fd)

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """The calling thread inside the namespace for the ``with`` block (see :func:`enter`)."""
        if self._fd < 0:
            raise EtranRuntimeError(f"enter network namespace {self.name}",
                                    "its handle is closed")
        where = _where
        if where.entered:
            back, here = where.entered[-1]
        else:
            if where.home is None:
                where.home = _Handle(os.open(_OWN_NAMESPACE, os.O_RDONLY | os.O_CLOEXEC))
            back, here = where.home.fd, where.home.ino
        # a thread already there (inside the host, as an application started with `ip
        # netns exec` or a pump is) switches nothing: no setns(2) pair, about 15 us a call
        switch = here != self._ino
        if switch:
            try:
                _setns(self._fd)
            except OSError as exc:
                _raise_for(f"enter network namespace {self.name}", exc)
        where.entered.append((self._fd, self._ino))
        try:
            yield
        finally:
            where.entered.pop()
            if switch:
                try:
                    _setns(back)
                except OSError as exc:
                    raise EtranRuntimeError(f"leave network namespace {self.name}",
                                            f"setns back failed ({exc}); this thread is "
                                            "stranded in the wrong namespace") from exc

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Entry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def enter(name: str) -> Iterator[None]:
    """Run the ``with`` block with the calling thread inside namespace ``name``.

    Other threads are unaffected, but a thread *started* inside the block inherits the
    namespace (clone copies the creating thread's). The thread goes back to where it was even
    if the block raises; if it cannot (which would leave it in the wrong namespace), that is
    an error.
    """
    with Entry(name) as entry, entry.entered():
        yield


def netlink(name: str | None) -> IPRoute:
    """A netlink (rtnetlink) socket bound in namespace ``name`` (None: the current one).

    The socket stays in that namespace whatever thread uses it later; close it (``with``).
    """
    from pyroute2 import IPRoute
    if name is None:
        return IPRoute()
    with enter(name):
        return IPRoute()


def interfaces(name: str | None) -> dict[str, int]:
    """{interface name: ifindex} inside namespace ``name``."""
    with netlink(name) as ipr:
        return {link.get_attr("IFLA_IFNAME"): int(link["index"]) for link in ipr.get_links()}


def ifindex(name: str | None, ifname: str) -> int:
    """The ifindex of ``ifname`` inside namespace ``name``; a clear error naming the
    interfaces that do exist when it is missing."""
    found = interfaces(name)
    if ifname not in found:
        where = f"network namespace {name}" if name else "this network namespace"
        have = ", ".join(sorted(found)) or "none"
        raise EtranRuntimeError(f"find interface {ifname!r}",
                                f"no such interface in {where} (it has: {have})")
    return found[ifname]


def interface(name: str | None, ifname: str) -> Interface:
    """The :class:`Interface` ``ifname`` of namespace ``name`` (an error if it is missing)."""
    return Interface(name, ifname, ifindex(name, ifname))


def write_sysctl(name: str, key: str, value: str) -> None:
    """Set ``/proc/sys/<key>`` (dots become slashes) inside namespace ``name``; /proc/sys/net
    belongs to the namespace of the thread that opens it."""
    file = "/proc/sys/" + key.replace(".", "/")
    with enter(name):
        try:
            with open(file, "w", encoding="ascii") as f:
                f.write(value)
        except OSError as exc:
            _raise_for(f"set {key}={value} in network namespace {name}", exc)


def _raise_for(action: str, exc: OSError) -> NoReturn:
    if exc.errno in (errno.EPERM, errno.EACCES):
        raise NotSupported("CAP_SYS_ADMIN/root", "creating and entering network namespaces "
                           "needs it; run as root", action) from exc
    raise EtranRuntimeError(action, f"{os.strerror(exc.errno or 0)} ({exc})") from exc

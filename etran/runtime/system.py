"""The machine: whether it can run BPF at all, its CPU count, bpffs and pinning.

Also ``doing``, the one place where a failure of the foreign layer (an ``OSError`` from
:mod:`etran.runtime.libbpf`) is chained into a :class:`~etran.runtime.errors.BpfError` that
starts with a verb phrase.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
from collections.abc import Iterator

from etran.abi import MAP_TYPES
from etran.runtime import libbpf as lb
from etran.runtime.errors import BpfError, EtranRuntimeError, NotSupported


@contextlib.contextmanager
def doing(action: str) -> Iterator[None]:
    """Chain a failure of the foreign layer into ``BpfError`` whose message starts with
    ``action``."""
    try:
        yield
    except OSError as exc:
        raise BpfError(action, exc.errno or 0) from exc


@functools.cache
def possible_cpus() -> int:
    """How many CPUs the kernel may bring up: the slot count of every per-CPU value."""
    try:
        return lb.num_possible_cpus()
    except OSError as exc:
        raise BpfError("count possible CPUs", exc.errno or 0) from exc


def pin(fd: int, path: str) -> None:
    """Pin the program, map or link behind ``fd`` at ``path`` (on a bpffs)."""
    with doing(f"pin fd {fd} at {path}"):
        lb.obj_pin(fd, path)


def get_pinned(path: str) -> int:
    """A new fd for the object pinned at ``path``; the caller owns it (``os.close``)."""
    with doing(f"open pinned object {path}"):
        return lb.obj_get(path)


def ensure_bpffs(path: str = "/sys/fs/bpf") -> None:
    """Make sure a bpf filesystem is mounted at ``path`` (mount one if not)."""
    if _is_bpffs(path):
        return
    os.makedirs(path, exist_ok=True)
    with doing(f"mount a bpf filesystem at {path}"):
        lb.mount_bpffs(path)


def _is_bpffs(path: str) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) >= 3 and fields[2] == "bpf" and \
                    fields[1].replace("\\040", " ") == target:
                return True
    return False


_CAP_NET_ADMIN = 12
_CAP_SYS_ADMIN = 21


def require_admin(verb: str) -> None:
    """Raise :class:`EtranRuntimeError` unless this process may manage etran's hosts.

    Bringing hosts up, listing them and removing them all enter network namespaces and
    read or write pinned BPF objects, which need CAP_SYS_ADMIN and CAP_NET_ADMIN. Asking
    first, before any state is read, gives the same answer whatever earlier runs left on
    the machine (an unprivileged ``status`` on a machine with no runs would otherwise
    report "nothing is running").
    """
    missing = [name for name, bit in (("CAP_SYS_ADMIN", _CAP_SYS_ADMIN),
                                      ("CAP_NET_ADMIN", _CAP_NET_ADMIN))
               if not _has_capability(bit)]
    if missing:
        raise EtranRuntimeError(f"{verb} needs root", f"{' and '.join(missing)} missing (it "
                                "enters the hosts' network namespaces and reads pinned BPF "
                                "objects); run as root")


def check_kernel_support() -> None:
    """Raise :class:`NotSupported` naming what is missing to load and run XDP programs:
    ``libbpf.so.1``, the ``bpf(2) syscall``, ``CAP_BPF/root`` or ``CAP_NET_ADMIN``.

    The probe is real but cheap: create and close a one-element array map.
    """
    action = "check kernel support"
    try:
        fd = lb.map_create(MAP_TYPES["array"], 4, 4, 1, "etran_probe")
    except OSError as exc:
        if exc.errno == errno.ENOSYS:
            raise NotSupported("bpf(2) syscall", "this kernel has no bpf(2) (build it with "
                               "CONFIG_BPF_SYSCALL=y) or a seccomp filter blocks it") from exc
        if exc.errno in (errno.EPERM, errno.EACCES):
            raise NotSupported("CAP_BPF/root", "creating a BPF map was refused; run as root "
                               "or grant CAP_BPF and CAP_NET_ADMIN") from exc
        raise BpfError(f"{action}: create a probe map", exc.errno or 0) from exc
    os.close(fd)
    if not _has_capability(_CAP_NET_ADMIN):
        raise NotSupported("CAP_NET_ADMIN", "XDP and TC programs need it; run as root or grant "
                           "CAP_NET_ADMIN")


def _has_capability(bit: int) -> bool:
    try:
        with open("/proc/self/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> bit & 1)
    except OSError:
        pass
    return True  # cannot tell: let the real operation decide

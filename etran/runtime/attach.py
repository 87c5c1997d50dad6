"""Attach XDP programs to interfaces in network namespaces, and see what is attached.

Attachment goes through a BPF link (BPF_LINK_CREATE, attach type BPF_XDP), created from a
thread inside the interface's namespace because the kernel resolves the ifindex there. A link
is the safe kind of attachment: the program stays attached exactly as long as the link fd (or
a pin of it) exists, so a killed process detaches its programs by dying, and closing an
:class:`XdpLink` is all it takes to detach.

Native (driver) mode is the default: on veth it is what makes XDP_TX, redirects and AF_XDP
behave as on a NIC, and it has a rule (kernel-probe.md section 4): every veth that *receives*
XDP_TX or redirected frames needs an XDP program of its own, XDP_PASS being
enough. :func:`pass_object` loads that built-in program, compiled by etran from a three-line
transport.
"""

from __future__ import annotations

import errno
import functools
import os
import struct
import weakref
from dataclasses import dataclass

from etran.abi import BPF_XDP, PROG_TYPE_XDP, XDP_MODES
from etran.runtime import libbpf as lb
from etran.runtime import netns
from etran.runtime.errors import BpfError, EtranRuntimeError, NotSupported
from etran.runtime.loader import LoadedObject, Program, load_object
from etran.runtime.netns import Interface
from etran.runtime.system import doing, pin

MODES = XDP_MODES

PASS_SOURCE = """from etran.dsl import *

@xdp
def etran_pass(pkt: Packet) -> int:
    return XDP_PASS
"""


@functools.cache
def _builtin_elf(source: str) -> bytes:
    from etran.pipeline import compile_source  # the compiler is only needed here
    return compile_source(source, "<etran builtin>").elf


def builtin_object(source: str, name: str) -> LoadedObject:
    """A freshly loaded object built from one of the runtime's own small transports."""
    return load_object(_builtin_elf(source), name)


def pass_object() -> LoadedObject:
    """A freshly loaded object whose one program, ``etran_pass``, returns XDP_PASS."""
    return builtin_object(PASS_SOURCE, "etran_pass")




@dataclass(frozen=True, slots=True)
class LinkInfo:
    """``struct bpf_link_info`` for an XDP link (ifindex 0 once the interface is gone)."""

    link_id: int
    prog_id: int
    ifindex: int


class XdpLink:
    """An XDP program attached to an interface; :meth:`close` detaches it (unless pinned)."""

    def __init__(self, fd: int, program: str, interface: Interface, mode: str) -> None:
        self._fd = fd
        self.program = program
        self.interface = interface
        self.mode = mode
        self.pinned_at: str | None = None
        self._finalizer = weakref.finalize(self, os.close, fd)

    @property
    def fd(self) -> int:
        if not self._finalizer.alive:
            raise EtranRuntimeError(f"use the XDP link of {self.program!r}", "it is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def info(self) -> LinkInfo:
        with doing(f"describe the XDP link of {self.program!r} on {self.interface}"):
            raw = lb.obj_get_info(self.fd, 64)
        _type, link_id, prog_id = struct.unpack_from("<3I", raw, 0)
        (ifindex,) = struct.unpack_from("<I", raw, 16)  # union at offset 16: xdp.ifindex
        return LinkInfo(link_id, prog_id, ifindex)

    def pin(self, path: str) -> None:
        """Pin the link so the program stays attached after this process exits."""
        pin(self.fd, path)
        self.pinned_at = path

    def close(self) -> None:
        """Close the link fd: the program is detached unless a pin still holds the link."""
        self._finalizer()

    def __enter__(self) -> XdpLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        return f"XdpLink({self.program!r} on {self.interface}, {self.mode}, {state})"


def attach_xdp(program: Program, interface: Interface, mode: str = "native") -> XdpLink:
    """Attach ``program`` to ``interface`` in ``mode`` ("native" or "generic")."""
    action = f"attach program {program.name!r} to {interface} ({mode} XDP)"
    if mode not in MODES:
        raise EtranRuntimeError(action, f"unknown mode {mode!r}; use one of {sorted(MODES)}")
    if program.prog_type != PROG_TYPE_XDP:
        raise EtranRuntimeError(action, f"it is not an XDP program (type {program.prog_type})")
    present = netns.interfaces(interface.netns)
    if present.get(interface.name) != interface.ifindex:
        where = f"network namespace {interface.netns}" if interface.netns else "this namespace"
        raise EtranRuntimeError(action, f"no interface {interface.name!r} with ifindex "
                                f"{interface.ifindex} in {where} (it has: "
                                f"{', '.join(sorted(present)) or 'none'})")
    try:
        with interface.entered():
            fd = lb.link_create(program.fd, interface.ifindex, BPF_XDP, MODES[mode])
    except OSError as exc:
        raise _attach_error(action, exc.errno or 0, interface) from exc
    return XdpLink(fd, program.name, interface, mode)


def _attach_error(action: str, err: int, interface: Interface) -> EtranRuntimeError:
    ns = f"-n {interface.netns} " if interface.netns else ""
    if err == errno.EBUSY or err == errno.EEXIST:
        return EtranRuntimeError(action, "the interface already has an XDP program; detach it "
                                 f"first (`ip {ns}link set dev {interface.name} xdp off`, or "
                                 "close the link that holds it)")
    if err in (errno.EOPNOTSUPP, 524):
        return NotSupported(f"native XDP on {interface.name}", "its driver cannot run XDP "
                            "programs in driver mode; use mode='generic'", action)
    if err in (errno.ENODEV, errno.ENOENT):
        return EtranRuntimeError(action, "the interface disappeared (was the topology torn "
                                 "down?)")
    return BpfError(action, err)


def attached_program_ids(namespace: str | None) -> dict[str, int]:
    """{interface: id of its attached XDP program} for every interface of ``namespace`` that
    has one, read from netlink (what ``ip -d link`` shows)."""
    found: dict[str, int] = {}
    with netns.netlink(namespace) as ipr:
        for link in ipr.get_links():
            xdp = link.get_attr("IFLA_XDP")
            if xdp is None:
                continue
            prog_id = xdp.get_attr("IFLA_XDP_PROG_ID")
            if prog_id:
                found[str(link.get_attr("IFLA_IFNAME"))] = int(prog_id)
    return found

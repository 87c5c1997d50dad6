"""Hosts in network namespaces, joined through a switch: the network etran's transports run on.

Every topology has the same shape, a star::

    host a [etran-eth0] ──veth── [etran-a] ┐
    host b [etran-eth0] ──veth── [etran-b] ┼─ bridge etran-br   (namespace etran-<id>-sw)
    ...                                    ┘

Each host is a namespace ``etran-<id>-<host>`` with one interface, ``etran-eth0``, holding
10.111.0.N/24 and the MAC 02:e7:00:00:00:N (N = 1, 2, ...). Addresses exist only inside these
namespaces. Every host has a permanent neighbour entry for every other host and the bridge a
static entry for every host, so plain sockets work at once, no ARP or flooding disturbs a test
that counts frames, and no frame for one host is flooded to another. IPv6 is off (no router
solicitations or DAD frames) and the bridge does no multicast snooping (it would send IGMP
reports to every host), so a quiet topology carries no frames at all; TX checksum offload is
off on every veth, so frames carry
full checksums when XDP programs read them, bounce them (XDP_TX) or hand them to AF_XDP.

Why a switch rather than a bare veth pair: incast needs one receiving interface for N senders,
and the switch port that faces a host is where the *link* is: an impairment program (dropping,
delaying) attaches there without touching the hosts. In native mode those ports must run an
XDP program anyway, because hosts' programs send them XDP_TX'd frames; they run the
built-in XDP_PASS program unless :meth:`Topology.set_link_program` puts another there.

Shapes: ``two-hosts`` (a, b) and ``incast:N`` (senders s0..s{N-1}, receiver r).
Teardown is guaranteed by :class:`~etran.runtime.runs.Run` (context manager, exit, signals,
and ``etran down`` for killed processes).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pyroute2.netlink.rtnl import ndmsg

from etran.runtime import netns
from etran.runtime.attach import XdpLink, attach_xdp, pass_object
from etran.runtime.errors import EtranRuntimeError
from etran.runtime.loader import LoadedObject, Program
from etran.runtime.netns import Interface
from etran.runtime.runs import BPFFS, Run
from etran.runtime.system import ensure_bpffs

SUBNET = "10.111.0.0/24"
HOST_IFNAME = "etran-eth0"
BRIDGE = "etran-br"
SWITCH = "sw"
MAX_HOSTS = 200
_SO_RCVBUFFORCE = 33  # not in Python's socket module; beats net.core.rmem_max as root


@dataclass(frozen=True, slots=True)
class Host:
    """One host: its namespace, its interface (``etran-eth0``), address and MAC."""

    name: str
    netns: str
    interface: Interface
    ip: str
    mac: str

    @property
    def ifname(self) -> str:
        return self.interface.name

    @property
    def ifindex(self) -> int:
        return self.interface.ifindex

    @property
    def mac_bytes(self) -> bytes:
        return bytes.fromhex(self.mac.replace(":", ""))

    def entered(self) -> contextlib.AbstractContextManager[None]:
        """The calling thread inside this host's namespace."""
        return netns.enter(self.netns)

    def udp_socket(self, port: int = 0, *, timeout: float | None = 1.0,
                   buffer_bytes: int = 4 << 20) -> socket.socket:
        """A UDP socket of this host bound to its address (``port`` 0: any free port), with
        ``buffer_bytes`` of receive buffer so a burst is not dropped before it is read."""
        with self.entered():
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, buffer_bytes)
            except PermissionError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_bytes)
            sock.bind((self.ip, port))
            sock.settimeout(timeout)
        except BaseException:
            sock.close()
            raise
        return sock

    def describe(self) -> dict[str, Any]:
        return {"netns": self.netns, "ifname": self.ifname, "ifindex": self.ifindex,
                "ip": self.ip, "mac": self.mac}


def parse_kind(kind: str) -> list[str]:
    """Host names for a topology kind: ``two-hosts`` or ``incast:N``."""
    if kind == "two-hosts":
        return ["a", "b"]
    if kind.startswith("incast:"):
        try:
            senders = int(kind.split(":", 1)[1])
        except ValueError:
            senders = 0
        if not 1 <= senders < MAX_HOSTS:
            raise EtranRuntimeError(f"build topology {kind!r}", "incast:N needs a sender count "
                                    f"N between 1 and {MAX_HOSTS - 1}, as in incast:4")
        return [f"s{i}" for i in range(senders)] + ["r"]
    raise EtranRuntimeError(f"build topology {kind!r}", "unknown topology; use two-hosts or "
                            "incast:N")


class Topology:
    """Hosts joined through a switch namespace; a context manager that tears it all down.

    ``Topology("two-hosts")`` or ``Topology("incast:4")``. With ``switch_xdp`` (the default)
    every switch port runs the built-in XDP_PASS program, which native XDP_TX, redirects and
    live frames from the hosts need; without it the topology needs no BPF at all.
    """

    def __init__(self, kind: str = "two-hosts", *, switch_xdp: bool = True,
                 source: str = "", persistent: bool = False) -> None:
        names = parse_kind(kind)
        self.kind = kind
        self.run = Run(kind, source=source, persistent=persistent)
        self.hosts: dict[str, Host] = {}
        self.ports: dict[str, Interface] = {}
        self.links: dict[str, XdpLink] = {}  # "<host>" or "link:<host>" -> its XDP link
        self._objects: list[tuple[str | None, LoadedObject]] = []  # (host it runs on, object)
        self._pass: Program | None = None
        self.switch = self.run.namespace(SWITCH)
        try:
            self._build(names)
            if switch_xdp:
                for host in names:
                    self.set_link_program(host, None)
        except BaseException:
            self.close()
            raise

    # ---- building

    def _build(self, names: list[str]) -> None:
        for ns in [self.switch] + [self.run.namespace(h) for h in names]:
            netns.create(ns)
            netns.write_sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1")
            netns.write_sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1")
        with netns.netlink(self.switch) as sw:
            sw.link("add", ifname=BRIDGE, kind="bridge", br_stp_state=0, br_forward_delay=0,
                    br_mcast_snooping=0)
            bridge = sw.link_lookup(ifname=BRIDGE)[0]
            for number, name in enumerate(names, start=1):
                self._add_host(sw, bridge, name, number)
            sw.link("set", index=bridge, state="up")
            sw.link("set", index=sw.link_lookup(ifname="lo")[0], state="up")
        for host in self.hosts.values():
            self._configure_host(host)
        self.run.record.hosts = {h.name: h.describe() for h in self.hosts.values()}
        self.run.save()

    def _add_host(self, sw: Any, bridge: int, host: str, number: int) -> None:
        ns = self.run.namespace(host)
        mac = f"02:e7:00:00:{number >> 8:02x}:{number & 0xff:02x}"
        port = f"etran-{host}"
        target = os.open(netns.path(ns), os.O_RDONLY | os.O_CLOEXEC)
        try:
            sw.link("add", ifname=port, kind="veth",
                    peer={"ifname": HOST_IFNAME, "net_ns_fd": target, "address": mac})
        finally:
            os.close(target)
        index = sw.link_lookup(ifname=port)[0]
        sw.link("set", index=index, master=bridge, state="up")
        sw.fdb("add", ifindex=index, lladdr=mac, state=ndmsg.states["noarp"],
               flags=ndmsg.NTF_MASTER)
        checksum_offload_off(self.switch, port)
        self.ports[host] = Interface(self.switch, port, index)
        self.hosts[host] = Host(host, ns, netns.interface(ns, HOST_IFNAME),
                                f"10.111.0.{number}", mac)

    def _configure_host(self, host: Host) -> None:
        with netns.netlink(host.netns) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
            ipr.link("set", index=host.ifindex, state="up")
            ipr.addr("add", index=host.ifindex, address=host.ip, prefixlen=24)
            for other in self.hosts.values():
                if other is not host:
                    ipr.neigh("add", dst=other.ip, lladdr=other.mac, ifindex=host.ifindex,
                              state=ndmsg.states["permanent"])
        checksum_offload_off(host.netns, host.ifname)

    # ---- use

    def host(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise EtranRuntimeError(f"find host {name!r}", f"topology {self.kind} has hosts "
                                    f"{', '.join(self.hosts)}") from None

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def port(self, host: str) -> Interface:
        """The switch port facing ``host``: the far end of the host's link."""
        self.host(host)
        return self.ports[host]

    def attach(self, host: str, program: Program, mode: str = "native") -> XdpLink:
        """Attach ``program`` to ``host``'s interface; detached when the topology closes."""
        key = host
        self._detach(key)
        link = attach_xdp(program, self.host(host).interface, mode)
        self._keep(key, link)
        return link

    def set_link_program(self, host: str, program: Program | None,
                         mode: str = "native") -> XdpLink:
        """Run ``program`` (an impairment, say) on the switch port facing ``host``; None
        puts back the built-in XDP_PASS program."""
        key = f"link:{host}"
        self._detach(key)
        if program is None:
            if self._pass is None:
                obj = pass_object()
                self._objects.append((None, obj))
                self._pass = obj.programs["etran_pass"]
            program = self._pass
        link = attach_xdp(program, self.port(host), mode)
        self._keep(key, link)
        return link

    def detach(self, host: str) -> None:
        """Detach the program ``attach`` put on ``host``'s interface."""
        if host in self.links:
            self._detach(host)
            self._keep_record()

    def own(self, obj: LoadedObject, host: str | None = None) -> LoadedObject:
        """Close ``obj`` (a transport loaded for ``host``, say) when the topology closes;
        :meth:`persist` pins its maps and programs under the host's pin directory
        (``link-<host>`` for a program on the link to ``host``)."""
        if host is not None:
            self.host(host.removeprefix("link-"))
        self._objects.append((host, obj))
        return obj

    def _keep(self, key: str, link: XdpLink) -> None:
        self.links[key] = link
        self._keep_record()

    def _keep_record(self) -> None:
        self.run.record.attached = [
            {"where": k, "program": v.program, "netns": v.interface.netns,
             "ifname": v.interface.name, "mode": v.mode, "pin": v.pinned_at}
            for k, v in self.links.items()]
        self.run.save()

    def _detach(self, key: str) -> None:
        link = self.links.pop(key, None)
        if link is not None:
            link.close()

    # ---- teardown

    def persist(self) -> str:
        """Pin every link, and the maps and programs of every object owned for a host, under
        the run's pin directory; then let go of them: the run outlives this process (its
        programs stay attached, its maps keep their state, its timers keep firing) until
        ``etran down``. Returns the pin directory.

        Layout: ``<pin dir>/links/<host>`` (the host's interface), ``links/link-<host>`` (the
        switch port facing it), ``<host>/maps/<map>``, ``<host>/progs/<program>``.
        """
        ensure_bpffs(BPFFS)
        root = self.run.pin_dir
        os.makedirs(os.path.join(root, "links"), exist_ok=True)
        for key, link in self.links.items():
            link.pin(os.path.join(root, "links", key.replace(":", "-")))
        for host, obj in self._objects:
            if host is None:
                continue
            for kind, things in (("maps", obj.maps), ("progs", obj.programs)):
                directory = os.path.join(root, host, kind)
                os.makedirs(directory, exist_ok=True)
                for name, thing in things.items():
                    thing.pin(os.path.join(directory, name))
        self._keep_record()
        self.run.detach()
        self._release()
        return root

    def _release(self) -> None:
        for link in self.links.values():
            link.close()
        self.links.clear()
        for _host, obj in reversed(self._objects):
            obj.close()
        self._objects.clear()

    def close(self) -> None:
        """Detach every program, close owned objects, remove namespaces, pins, state file."""
        if self.run.record.persistent and self.run.closed:
            return  # persisted: only `etran down` removes it
        self._release()
        problems = self.run.close()
        if problems:
            raise EtranRuntimeError(f"tear down topology {self.kind} (run {self.run_id})",
                                    "; ".join(problems))

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Topology({self.kind!r}, run={self.run_id}, hosts={list(self.hosts)})"


def checksum_offload_off(namespace: str, ifname: str) -> None:
    """``ethtool -K IF tx off``: the stack writes full checksums itself (see module doc)."""
    from pyroute2.ethtool import Ethtool
    with netns.enter(namespace):
        tool = Ethtool()
    try:
        features = tool.get_features(ifname)
        changed = False
        for name, feature in features.features.items():
            if name.startswith("tx-checksum") and feature.enable and feature.available:
                feature.enable = False
                changed = True
        if changed:
            tool.set_features(ifname, features)
    finally:
        tool.close()


@contextlib.contextmanager
def topology(kind: str = "two-hosts", **options: Any) -> Iterator[Topology]:
    """``with topology("incast:4") as topo: ...``: the same as ``with Topology(...)``."""
    with Topology(kind, **options) as topo:
        yield topo

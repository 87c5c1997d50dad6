"""Topologies: hosts in namespaces joined through a switch; they come up, carry plain UDP,
and leave nothing behind."""

from __future__ import annotations

import os
import subprocess
import threading

import pytest

from etran.runtime import netns, runs
from etran.runtime.errors import EtranRuntimeError
from etran.runtime.topology import HOST_IFNAME, Topology

pytestmark = pytest.mark.netns


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


def test_two_hosts_come_up_and_go_away_completely(kernel: None) -> None:
    with Topology("two-hosts") as topo:
        run_id = topo.run_id
        names = [topo.switch] + [h.netns for h in topo.hosts.values()]
        listed = ip("netns", "list")
        assert all(name in listed for name in names)
        assert os.path.exists(os.path.join(runs.STATE_DIR, f"{run_id}.json"))
        a, b = topo.host("a"), topo.host("b")
        assert (a.ip, b.ip) == ("10.111.0.1", "10.111.0.2")
        assert HOST_IFNAME in ip("-n", a.netns, "link", "show")
        assert "prog/xdp" in ip("-n", topo.switch, "-d", "link", "show", "etran-a")
        assert b.ip in ip("-n", a.netns, "neigh", "show")
    assert run_id not in ip("netns", "list")
    assert not runs.find_objects(run_id)
    assert not os.path.exists(os.path.join(runs.STATE_DIR, f"{run_id}.json"))
    assert "etran-" not in ip("link", "show")  # nothing ever lands in the root namespace


def test_udp_works_both_ways_between_two_hosts(kernel: None) -> None:
    with Topology("two-hosts") as topo:
        a, b = topo.host("a"), topo.host("b")
        with b.udp_socket(9000) as server, a.udp_socket() as client:
            client.sendto(b"ping", (b.ip, 9000))
            data, peer = server.recvfrom(100)
            assert (data, peer[0]) == (b"ping", a.ip)
            server.sendto(b"pong", peer)
            assert client.recvfrom(100)[0] == b"pong"


def test_incast_senders_all_reach_the_receiver(kernel: None) -> None:
    with Topology("incast:3") as topo:
        assert list(topo.hosts) == ["s0", "s1", "s2", "r"]
        r = topo.host("r")
        with r.udp_socket(9000) as server:
            for name in ("s0", "s1", "s2"):
                with topo.host(name).udp_socket() as client:
                    client.sendto(name.encode(), (r.ip, 9000))
            got = {server.recvfrom(100)[0] for _ in range(3)}
        assert got == {b"s0", b"s1", b"s2"}


def test_parallel_runs_do_not_collide(kernel: None) -> None:
    with Topology("two-hosts", switch_xdp=False) as one, \
            Topology("two-hosts", switch_xdp=False) as two:
        assert one.run_id != two.run_id
        for topo in (one, two):
            a, b = topo.host("a"), topo.host("b")
            with b.udp_socket(9000) as server, a.udp_socket() as client:
                client.sendto(topo.run_id.encode(), (b.ip, 9000))
                assert server.recvfrom(100)[0] == topo.run_id.encode()


def test_enter_switches_only_this_thread_and_always_comes_back(kernel: None) -> None:
    def inode() -> int:
        return os.stat("/proc/thread-self/ns/net").st_ino

    home = inode()
    with Topology("two-hosts", switch_xdp=False) as topo:
        seen: dict[str, int] = {}
        go = threading.Event()

        def elsewhere() -> None:  # a thread that already exists is not moved
            go.wait()
            seen["other"] = inode()

        other = threading.Thread(target=elsewhere)
        other.start()
        with netns.enter(topo.host("a").netns):
            seen["inside"] = inode()
            go.set()
            other.join()
        assert seen["inside"] != home and seen["other"] == home
        with pytest.raises(ZeroDivisionError), netns.enter(topo.host("b").netns):
            _ = 1 // 0
        assert inode() == home


def test_nested_entries_come_back_one_level_at_a_time(kernel: None) -> None:
    """A thread's own namespace is opened once and kept: leaving an inner entry goes back
    to the outer one, leaving the outer one goes home, and a thread started inside an
    entry has that namespace as its home."""
    def inode() -> int:
        return os.stat("/proc/thread-self/ns/net").st_ino

    home = inode()
    with Topology("two-hosts", switch_xdp=False) as topo:
        a, b = netns.Entry(topo.host("a").netns), netns.Entry(topo.host("b").netns)
        with a, b:
            seen: dict[str, int] = {}

            def started_inside() -> None:
                seen["start"] = inode()
                with b.entered():
                    seen["b"] = inode()
                seen["back"] = inode()

            for _ in range(2):
                with a.entered():
                    in_a = inode()
                    with b.entered():
                        in_b = inode()
                        t = threading.Thread(target=started_inside)
                        t.start()
                        t.join()
                    assert inode() == in_a
                    with pytest.raises(ZeroDivisionError), b.entered():
                        _ = 1 // 0
                    assert inode() == in_a
                assert inode() == home
            assert len({home, in_a, in_b}) == 3
            assert seen == {"start": in_b, "b": in_b, "back": in_b}


def test_entering_the_namespace_a_thread_is_in_costs_no_setns(
        kernel: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread already inside a namespace (entered through another handle, or started
    there) enters it again without setns(2), and still comes back to where it was; entering
    another namespace from there does switch, and back."""
    def inode() -> int:
        return os.stat("/proc/thread-self/ns/net").st_ino

    calls: list[int] = []
    real = netns._setns

    def counted(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(netns, "_setns", counted)
    home = inode()
    with Topology("two-hosts", switch_xdp=False) as topo:
        a1, a2 = netns.Entry(topo.host("a").netns), netns.Entry(topo.host("a").netns)
        b = netns.Entry(topo.host("b").netns)
        with a1, a2, b:
            calls.clear()
            with a1.entered():
                in_a = inode()
                assert len(calls) == 1
                with a2.entered():               # the same namespace, another handle
                    assert inode() == in_a and len(calls) == 1
                    with b.entered():            # elsewhere: a switch there and back
                        assert inode() != in_a and len(calls) == 2
                    assert inode() == in_a and len(calls) == 3
                assert inode() == in_a and len(calls) == 3
                seen: dict[str, int] = {}

                def started_inside() -> None:    # its home is a: entering a is free
                    before = len(calls)
                    with a2.entered():
                        seen["a"] = inode()
                    seen["setns"] = len(calls) - before

                t = threading.Thread(target=started_inside)
                t.start()
                t.join()
                assert seen == {"a": in_a, "setns": 0}
            assert inode() == home and len(calls) == 4


def test_unknown_topology_is_a_clear_error() -> None:
    with pytest.raises(EtranRuntimeError, match="unknown topology; use two-hosts or incast:N"):
        Topology("ring:4")
    with pytest.raises(EtranRuntimeError, match=r"incast:N needs a sender count"):
        Topology("incast:0")


def test_entering_a_missing_namespace_is_a_clear_error() -> None:
    with pytest.raises(EtranRuntimeError, match="no such namespace"), netns.enter("etran-000000-nothere"):
        pass

"""XDP attach through BPF links: a DSL counting transport sees every frame, closing detaches,
and each failure is a clear error that leaves nothing attached."""

from __future__ import annotations

import subprocess

import pytest

from etran.pipeline import check_source, compile_program
from etran.runtime import attach
from etran.runtime.attach import attach_xdp
from etran.runtime.errors import EtranRuntimeError, VerifierError
from etran.runtime.loader import load_object
from etran.runtime.netns import Interface
from etran.runtime.topology import Topology

from .conftest import HERE, compiled, nothing_attached, u64s

pytestmark = pytest.mark.netns


@pytest.mark.parametrize("mode", ["native", "generic"])
def test_attached_program_counts_every_frame_then_detaches(kernel: None, mode: str) -> None:
    with Topology("two-hosts") as topo, load_object(compiled("counter.py").elf) as obj:
        a, b = topo.host("a"), topo.host("b")
        link = attach_xdp(obj.programs["count"], b.interface, mode)
        with link, b.udp_socket(9000) as server, a.udp_socket() as client:
            info = link.info()
            assert attach.attached_program_ids(b.netns) == {b.ifname: info.prog_id}
            assert info.ifindex == b.ifindex
            for i in range(20):
                client.sendto(b"%d" % i, (b.ip, 9000))
            assert len([server.recvfrom(100) for _ in range(20)]) == 20
            frames, port_frames = u64s(obj.maps["counters"].lookup(bytes(4)))
            assert port_frames == 20 and frames == 20  # no ARP, no IPv6 noise
        assert nothing_attached(b.netns)
        ip_link = subprocess.run(["ip", "-n", b.netns, "-d", "link", "show", b.ifname],
                                 capture_output=True, text=True, check=True).stdout
        assert "prog/xdp" not in ip_link


def test_missing_interface_is_a_clear_error(kernel: None) -> None:
    with Topology("two-hosts", switch_xdp=False) as topo, \
            load_object(compiled("counter.py").elf) as obj:
        b = topo.host("b")
        with pytest.raises(EtranRuntimeError) as err:
            attach_xdp(obj.programs["count"], Interface(b.netns, "eth9", 99))
        assert str(err.value) == (
            f"attach program 'count' to eth9 in {b.netns} (native XDP): no interface 'eth9' "
            f"with ifindex 99 in network namespace {b.netns} (it has: etran-eth0, lo)")
        assert nothing_attached(b.netns)


def test_second_program_on_an_interface_is_refused_clearly(kernel: None) -> None:
    with Topology("two-hosts", switch_xdp=False) as topo, \
            load_object(compiled("counter.py").elf) as obj:
        b = topo.host("b")
        with attach_xdp(obj.programs["count"], b.interface) as first:
            with pytest.raises(EtranRuntimeError, match="already has an XDP program"):
                attach_xdp(obj.programs["count"], b.interface)
            assert attach.attached_program_ids(b.netns) == {b.ifname: first.info().prog_id}
        assert nothing_attached(b.netns)


def test_program_that_fails_to_verify_leaves_nothing_attached(kernel: None) -> None:
    program = check_source((HERE / "counter.py").read_text(), "counter.py")
    # the compiler's test switch that omits the bounds check the checker relies on
    broken = compile_program(program, defects=frozenset({"no-packet-bounds"}))
    with Topology("two-hosts", switch_xdp=False) as topo:
        with pytest.raises(VerifierError) as err, load_object(broken.elf) as obj:
            topo.attach("b", obj.programs["count"])
        assert str(err.value).startswith("load program 'count': rejected by the verifier: ")
        assert "invalid access to packet" in str(err.value)
        assert nothing_attached(topo.host("b").netns)
        assert topo.links.keys() == set()

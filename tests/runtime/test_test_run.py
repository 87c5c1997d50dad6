"""BPF_PROG_TEST_RUN through Program.test_run: verdicts, packet growth and shrinkage, xdp_md."""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Iterator

import pytest

from etran.runtime import BpfError, XdpContext, load_object
from etran.runtime.loader import LoadedObject

from .irobjects import (
    XDP_ABORTED,
    XDP_ADJUST_HEAD,
    XDP_ADJUST_TAIL,
    XDP_DROP,
    XDP_LOAD_BOUNDS,
    XDP_PASS,
    XDP_TX,
    build_object,
    xdp_return,
)

pytestmark = pytest.mark.kernel

PACKET = bytes(range(64))

# bpf_xdp_adjust_head(ctx, -4), then write DE AD BE EF into the new 4 bytes
GROW_HEAD = f"""
define i32 @grow_head(ptr %ctx) section "xdp" {{
  %rc = call i64 inttoptr (i64 {XDP_ADJUST_HEAD} to ptr)(ptr %ctx, i64 -4)
  %failed = icmp ne i64 %rc, 0
  br i1 %failed, label %abort, label %moved
moved:
{XDP_LOAD_BOUNDS}
  %lim = getelementptr i8, ptr %data, i64 4
  %short = icmp ugt ptr %lim, %end
  br i1 %short, label %abort, label %write
write:
  store i32 u0xEFBEADDE, ptr %data, align 4
  ret i32 {XDP_PASS}
abort:
  ret i32 {XDP_ABORTED}
}}
"""


def adjust_tail(name: str, delta: int) -> str:
    return f"""
define i32 @{name}(ptr %ctx) section "xdp" {{
  %rc = call i64 inttoptr (i64 {XDP_ADJUST_TAIL} to ptr)(ptr %ctx, i64 {delta})
  %failed = icmp ne i64 %rc, 0
  %r = select i1 %failed, i32 {XDP_ABORTED}, i32 {XDP_TX}
  ret i32 %r
}}
"""


# returns ingress_ifindex << 8 | rx_queue_index (struct xdp_md: ingress@12, rx_queue@16)
READ_QUEUE = """
define i32 @read_queue(ptr %ctx) section "xdp" {
  %qp = getelementptr i8, ptr %ctx, i64 16
  %q = load i32, ptr %qp, align 4
  %ip = getelementptr i8, ptr %ctx, i64 12
  %i = load i32, ptr %ip, align 4
  %hi = shl i32 %i, 8
  %r = or i32 %hi, %q
  ret i32 %r
}
"""


@functools.cache
def elf() -> bytes:
    verdicts = {"aborted": XDP_ABORTED, "drop": XDP_DROP, "pass_": XDP_PASS, "tx": XDP_TX}
    body = "".join(xdp_return(verdict, name) for name, verdict in verdicts.items())
    body += GROW_HEAD + adjust_tail("shrink_tail", -10) + adjust_tail("grow_tail", 16)
    return build_object(body + READ_QUEUE)


@pytest.fixture
def programs(kernel: None) -> Iterator[LoadedObject]:
    with load_object(elf(), "test_run") as obj:
        yield obj


@pytest.mark.parametrize("name,verdict", [("aborted", XDP_ABORTED), ("drop", XDP_DROP),
                                          ("pass_", XDP_PASS), ("tx", XDP_TX)])
def test_verdicts(programs: LoadedObject, name: str, verdict: int) -> None:
    result = programs.programs[name].test_run(PACKET)
    assert result.retval == verdict
    assert result.data == PACKET and result.ctx is None


def test_repeat_reports_mean_duration(programs: LoadedObject) -> None:
    result = programs.programs["pass_"].test_run(PACKET, repeat=1000)
    assert result.retval == XDP_PASS and 0 < result.duration_ns < 1_000_000


def test_head_growth_returns_the_longer_packet(programs: LoadedObject) -> None:
    result = programs.programs["grow_head"].test_run(PACKET)
    assert result.retval == XDP_PASS
    assert result.data == b"\xde\xad\xbe\xef" + PACKET


def test_tail_shrink_and_growth(programs: LoadedObject) -> None:
    shrunk = programs.programs["shrink_tail"].test_run(PACKET)
    assert shrunk.retval == XDP_TX and shrunk.data == PACKET[:-10]
    grown = programs.programs["grow_tail"].test_run(PACKET)
    assert grown.retval == XDP_TX and grown.data == PACKET + bytes(16)  # the kernel zeroes it


def test_repeat_does_not_reset_the_packet(programs: LoadedObject) -> None:
    # Measured on 6.18: the kernel reruns the program on the same buffer, so every
    # repetition's adjust_head/adjust_tail accumulates.
    result = programs.programs["grow_head"].test_run(PACKET, repeat=3)
    assert result.data == b"\xde\xad\xbe\xef" * 3 + PACKET


def test_too_small_output_buffer_is_an_error(programs: LoadedObject) -> None:
    with pytest.raises(BpfError) as caught:
        programs.programs["grow_head"].test_run(PACKET, data_out_size=len(PACKET))
    assert caught.value.errno == 28  # ENOSPC: the kernel copied what fitted and said so


def test_default_context_is_loopback_queue_zero(programs: LoadedObject) -> None:
    prog = programs.programs["read_queue"]
    assert prog.test_run(PACKET).retval == 1 << 8 | 0
    result = prog.test_run(PACKET, ctx=XdpContext())
    assert result.retval == 1 << 8 | 0
    assert result.ctx == XdpContext(data=0, data_end=len(PACKET), ingress_ifindex=1)


def test_metadata_in_front_of_the_packet(programs: LoadedObject) -> None:
    meta = b"META"
    result = programs.programs["pass_"].test_run(meta + PACKET, ctx=XdpContext(data=len(meta)))
    assert result.data == meta + PACKET  # the output starts at data_meta
    assert result.ctx is not None and result.ctx.data == len(meta)


@pytest.mark.parametrize("ctx", [XdpContext(egress_ifindex=1), XdpContext(rx_queue_index=1),
                                 XdpContext(ingress_ifindex=0, rx_queue_index=1),
                                 XdpContext(data=3), XdpContext(data_meta=4)])
def test_context_the_kernel_refuses(programs: LoadedObject, ctx: XdpContext) -> None:
    with pytest.raises(BpfError) as caught:
        programs.programs["read_queue"].test_run(PACKET, ctx=ctx)
    assert caught.value.errno == 22
    assert "rx_queue_index below the ingress" in str(caught.value)  # the rules, spelled out


def test_packet_shorter_than_ethernet_header(programs: LoadedObject) -> None:
    with pytest.raises(BpfError, match="at least 14 bytes"):
        programs.programs["pass_"].test_run(bytes(13))


def test_rx_queue_index_of_a_multiqueue_device(programs: LoadedObject) -> None:
    from pyroute2 import NetNS, netns  # type: ignore[import-untyped]

    name = f"etran-rt-{os.getpid()}"
    netns.create(name)
    try:
        with NetNS(name) as ns:
            ns.link("add", ifname="etq0", kind="veth", peer="etq1", num_rx_queues=4)
        netns.pushns(name)
        try:
            ifindex = socket.if_nametoindex("etq0")
            prog = programs.programs["read_queue"]
            for queue in range(4):
                ctx = XdpContext(ingress_ifindex=ifindex, rx_queue_index=queue)
                result = prog.test_run(PACKET, ctx=ctx)
                assert result.retval == ifindex << 8 | queue
                assert result.ctx == XdpContext(data_end=len(PACKET), ingress_ifindex=ifindex,
                                                rx_queue_index=queue)
            with pytest.raises(BpfError):
                prog.test_run(PACKET, ctx=XdpContext(ingress_ifindex=ifindex, rx_queue_index=4))
        finally:
            netns.popns()
    finally:
        netns.remove(name)

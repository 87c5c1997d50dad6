"""A program forced past the checker is rejected by the kernel, and the rejection is shown at DSL lines.

`defects={"no-packet-bounds"}` makes the compiler omit the packet bounds check
the checker relies on: exactly the program the checker exists to prevent. The
kernel must reject it, and the report must name the DSL line of the unchecked
read, quote it, and say what to change.
"""
from __future__ import annotations

import pytest

from etran.cli.verifier_report import parse_rejection, render_rejection
from etran.pipeline import check_source, compile_program
from etran.runtime.errors import VerifierError
from etran.runtime.loader import load_object

SOURCE = '''from etran.dsl import *
from etran.bpf_templates.headers import Eth, IPv4, ETH_P_IP


@xdp
def ttl_guard(pkt: Packet) -> int:
    eth = pkt.header(Eth, 0)
    if eth is None or eth.proto != ETH_P_IP:
        return XDP_PASS
    ip = pkt.header(IPv4, Eth.size)
    if ip is None:
        return XDP_PASS
    if ip.ttl <= 1:
        return XDP_DROP
    return XDP_PASS
'''

pytestmark = pytest.mark.kernel


def test_unchecked_packet_read_is_rejected_at_its_dsl_line(kernel: None) -> None:
    program = check_source(SOURCE, "ttl_guard.py")
    obj = compile_program(program, defects=frozenset({"no-packet-bounds"}))
    with pytest.raises(VerifierError) as err:
        load_object(obj.elf)
    r = parse_rejection(err.value.program, err.value.log, err.value.error_line)
    assert r.program == "ttl_guard"
    assert "invalid access to packet" in r.message
    assert r.file == "ttl_guard.py"
    assert r.line == 8          # eth.proto: the first read the missing check exposes
    text = render_rejection(r, program.sources)
    lines = text.splitlines()
    assert lines[0].startswith("ttl_guard.py:8:5: error[verifier]: the kernel verifier rejected "
                               "`ttl_guard`: invalid access to packet")
    assert "    8 |     if eth is None or eth.proto != ETH_P_IP:" in lines[1]
    assert any("pkt.header(H, offset)" in ln for ln in lines), text
    assert any(ln.strip().startswith("; if eth is None") for ln in lines), text
    assert "(run with --log for the full verifier log)" in text
    full = render_rejection(r, program.sources, err.value.log)
    assert err.value.log.strip().splitlines()[-1].strip() in full


def test_the_correct_build_of_the_same_program_loads(kernel: None) -> None:
    obj = compile_program(check_source(SOURCE, "ttl_guard.py"))
    with load_object(obj.elf) as loaded:
        assert loaded.programs["ttl_guard"].stats.processed_insns > 0

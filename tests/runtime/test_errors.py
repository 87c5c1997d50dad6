"""Error messages, without a kernel: verifier-log summaries, errno advice, NotSupported."""

from __future__ import annotations

from etran.cli.verifier_report import parse_rejection
from etran.runtime.errors import BpfError, NotSupported, VerifierError

PACKET_LOG = """\
0: R1=ctx() R10=fp0
; eth = pkt.eth @ flow.py:6
0: (61) r1 = *(u32 *)(r1 +0)          ; R1=pkt(r=0)
; if eth.type == 0x0800: @ flow.py:7
1: (69) r1 = *(u16 *)(r1 +12)
invalid access to packet, off=12 size=2, R1(id=0,off=12,r=0)
R1 offset is outside of the packet
verification time 34 usec
stack depth 0
processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
"""

NULL_LOG = """\
0: R1=ctx() R10=fp0
4: (85) call bpf_map_lookup_elem#1    ; R0=map_value_or_null(id=1,map=h,ks=4,vs=8)
5: (79) r1 = *(u64 *)(r0 +0)
R0 invalid mem access 'map_value_or_null'
processed 6 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
"""


def test_summary_is_the_error_line_with_its_explanation() -> None:
    err = VerifierError("classify", PACKET_LOG, 13)
    assert err.error_line == "invalid access to packet, off=12 size=2, R1(id=0,off=12,r=0)"
    assert err.hint == "R1 offset is outside of the packet"
    assert err.summary() == str(err) == (
        "load program 'classify': rejected by the verifier: invalid access to packet, off=12 "
        "size=2, R1(id=0,off=12,r=0) (R1 offset is outside of the packet)")
    assert err.log == PACKET_LOG


def test_register_line_after_an_instruction_is_the_error_itself() -> None:
    err = VerifierError("lookup", NULL_LOG, 13)
    assert err.error_line == "R0 invalid mem access 'map_value_or_null'" and err.hint == ""
    assert err.summary().endswith("rejected by the verifier: R0 invalid mem access "
                                  "'map_value_or_null'")

LOOP_LOG = """\
123: (1d) if r2 == r1 goto pc+19      ; R1=scalar(id=9) R2=3
124: (05) goto pc-1
124: (05) goto pc-1
infinite loop detected at insn 124
cur state: R0=scalar() R1=scalar(id=9) R2=3 R10=fp0
old state: R0=scalar() R1=scalar(id=9) R2=3 R10=fp0
verification time 120 usec
processed 145 insns (limit 1000000) max_states_per_insn 1 total_states 9 peak_states 9 mark_read 2
"""


def test_infinite_loop_is_the_error_not_the_states_shown_after_it() -> None:
    err = VerifierError("rx", LOOP_LOG, 22)
    assert err.error_line == "infinite loop detected at insn 124" and err.hint == ""
    r = parse_rejection("rx", LOOP_LOG)
    assert r.message == "infinite loop detected at insn 124"
    assert r.hint is not None and "loop the verifier cannot bound" in r.hint


def test_tail() -> None:
    err = VerifierError("classify", PACKET_LOG, 13)
    assert err.tail(2) == ["stack depth 0", PACKET_LOG.splitlines()[-1]]
    assert err.tail() == PACKET_LOG.splitlines()
    assert err.tail(0) == []


def test_empty_or_truncated_logs() -> None:
    assert "EACCES" in VerifierError("p", "", 13).summary()
    truncated = VerifierError("p", "5: (b7) r0 = 0\nBPF program is too large.", 28,
                              truncated=True)
    assert truncated.summary().endswith("BPF program is too large. [log truncated]")


def test_bpf_error_turns_errno_into_advice() -> None:
    err = BpfError("load object 'x'", 1, ["libbpf: failed to load object 'x'"])
    text = str(err)
    assert text.startswith("load object 'x': Operation not permitted (EPERM); needs root")
    assert text.endswith("\n  libbpf: failed to load object 'x'")
    assert err.errno == 1 and err.details == ["libbpf: failed to load object 'x'"]
    assert "ENOSPC" in str(BpfError("x", 28)) and "log buffer" in str(BpfError("x", 28))
    assert "invalid BPF object format" in str(BpfError("open object", 4001))
    assert "ENOTSUPP" in str(BpfError("x", 524))


def test_not_supported_names_the_feature() -> None:
    err = NotSupported("CAP_BPF/root", "run as root")
    assert err.feature == "CAP_BPF/root"
    assert str(err) == "check kernel support: CAP_BPF/root is not available: run as root"

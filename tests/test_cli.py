"""The `etran` command line: outputs, exit codes, and one clear line for every bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from etran.cli.main import main
from etran.testing.packets import tcp_frame, udp_frame

ROOT = Path(__file__).resolve().parents[1]
DCTCP = str(ROOT / "examples" / "dctcp.py")
FIREWALL = str(ROOT / "examples" / "port_firewall.py")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_check_reports_each_hook_budget(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", DCTCP)
    assert code == 0
    assert "@xdp" in out and "rx:" in out and "of 1,000,000 processed" in out
    assert "@timer(Conn.rto)" in out and "stack" in out


def test_build_writes_a_bpf_object(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "dctcp.o"
    code, out, _ = run(capsys, "build", DCTCP, "-o", str(out_file))
    assert code == 0 and out_file.read_bytes()[:4] == b"\x7fELF"
    assert "rx (@xdp)" in out and "tx (@egress)" in out
    import subprocess
    sections = subprocess.run(["llvm-objdump-14", "-h", str(out_file)], capture_output=True,
                              text=True)
    if sections.returncode == 0:
        for name in ("xdp", ".maps", "license", ".BTF", ".BTF.ext"):
            assert f" {name} " in sections.stdout, sections.stdout


def test_disasm_interleaves_dsl_lines(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "disasm", DCTCP, "--hook", "rx")
    assert code == 0
    assert "; if eth is None or eth.proto != ETH_P_IP: @ dctcp.py:" in out
    assert "call bpf_map_lookup_elem#1" in out and "map[conns]" in out
    assert "rx: " in out.splitlines()[-1] and "instructions" in out.splitlines()[-1]


def test_output_cut_short_by_the_reader_is_not_an_error(tmp_path: Path) -> None:
    """`etran disasm f.py | head -2`: the pipe closes early; no traceback, no error."""
    import subprocess
    import sys
    big = tmp_path / "big.py"   # a listing well over a pipe's 64 KiB, so the writer blocks
    big.write_text("from etran.dsl import *\n\n\n@xdp\ndef rx(pkt: Packet) -> int:\n"
                   "    total: u32 = 0\n"
                   + "".join(f"    total = total * {i + 3} + pkt.len\n" for i in range(1500))
                   + "    return XDP_PASS if total != 7 else XDP_DROP\n")
    proc = subprocess.Popen([sys.executable, "-m", "etran", "disasm", str(big)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert first.startswith(b"program rx") and err == ""


def test_a_file_without_hooks_has_nothing_to_build(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    lib = tmp_path / "lib.py"
    lib.write_text("from etran.dsl import *\n\n\nclass Pair(Struct):\n    a: u32\n    b: u32\n")
    assert run(capsys, "check", str(lib))[0] == 0      # importable by other transports
    for command in ("build", "disasm", "verify"):
        code, out, err = run(capsys, command, str(lib))
        assert code == 1 and out == ""
        assert err.strip() == (f"etran: {lib} defines no hook: nothing to compile; decorate a "
                               "function with @xdp, @egress, @gen or @timer(Struct.field)")


def test_disasm_unknown_hook_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "disasm", DCTCP, "--hook", "nope")
    assert code == 2 and err.strip() == f"etran: no hook named 'nope' in {DCTCP}; hooks: rx, tx"


def test_missing_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "check", "does_not_exist.py")
    assert code == 2 and err.strip() == "etran: cannot read does_not_exist.py: no such file"


def test_bad_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "build")
    assert code == 2 and "usage:" in err
    code, _, err = run(capsys, "frobnicate")
    assert code == 2


@pytest.mark.kernel
def test_verify_prints_kernel_statistics(kernel: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "verify", DCTCP)
    assert code == 0
    assert "accepted by the kernel verifier" in out
    assert "rx:" in out and "instructions processed (checker estimate" in out and "states" in out


@pytest.mark.kernel
def test_run_shows_kernel_and_interpreter_side_by_side(kernel: None,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    blocked = [0] * 1024
    blocked[443 >> 6] = 1 << (443 & 63)
    maps = json.dumps({"config": {"0": {"enabled": True, "blocked": blocked}}})
    code, out, _ = run(capsys, "run", FIREWALL, "firewall", "--packet",
                       tcp_frame(dport=443).hex(), "--maps", maps)
    assert code == 0
    assert "XDP_DROP (1)" in out and "the kernel and the interpreter agree" in out
    assert "map drops after the run:" in out and "tcp=1" in out


@pytest.mark.kernel
def test_run_reports_a_mismatch_with_exit_1(kernel: None, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A deliberately wrong compiler (signed compares emitted unsigned) is caught."""
    import etran.pipeline as pipeline
    real = pipeline.compile_program

    def broken(program, observe=False, **kw):  # type: ignore[no-untyped-def]
        return real(program, observe=observe, defects=frozenset({"unsigned-compare"}))
    monkeypatch.setattr(pipeline, "compile_program", broken)
    src = ROOT / "tests" / "data" / "signed_compare.py"
    code, out, _ = run(capsys, "run", str(src), "classify", "--packet", udp_frame().hex(),
                       "--maps", json.dumps({"cfg": {"0": {"delta": -5}}}))
    assert code == 1
    assert "MISMATCH" in out and "action" in out


@pytest.mark.kernel
def test_run_rejects_bad_input_with_one_line(kernel: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "run", FIREWALL, "firewall", "--packet", "zz")
    assert code == 1 and err.startswith("etran: --packet:") and err.count("\n") == 1
    code, _, err = run(capsys, "run", FIREWALL, "firewall", "--packet", "00" * 20,
                       "--maps", "{not json")
    assert code == 1 and "--maps: invalid JSON" in err
    code, _, err = run(capsys, "run", FIREWALL, "firewall", "--packet", "00" * 20,
                       "--maps", json.dumps({"nope": {}}))
    assert code == 1 and "no map named 'nope'" in err
    code, _, err = run(capsys, "run", FIREWALL, "firewall", "--packet", "00" * 4)
    assert code == 1 and "at least 14 bytes" in err
    code, _, err = run(capsys, "run", FIREWALL, "nohook", "--packet", "00" * 20)
    assert code == 2 and "no hook named 'nohook'" in err
    code, _, err = run(capsys, "run", FIREWALL, "firewall", "--packet", "00" * 20, "--maps",
                       json.dumps({"config": {"0": {"enabled": True, "blocked": [1] * 2000}}}))
    assert code == 1 and "config value.blocked" in err and "do not fit" in err


def test_kernel_decides_loads_past_a_pessimistic_budget_estimate(
        kernel: None, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The option walk of tcp_options with 40 steps: the checker estimates over 1,000,000
    processed instructions (its estimate is pessimistic), the kernel needs about 25,000."""
    source = (ROOT / "examples" / "tcp_options.py").read_text()
    assert "MAX_OPTIONS = 10\n" in source
    walk40 = tmp_path / "walk40.py"
    walk40.write_text(source.replace("MAX_OPTIONS = 10\n", "MAX_OPTIONS = 40\n"))
    code, out, err = run(capsys, "check", str(walk40))
    assert code == 1 and "error[budget]: `parse_options` may make the verifier process" in err
    assert "`etran verify --kernel-decides`" in err
    assert run(capsys, "verify", str(walk40))[0] == 1
    code, out, err = run(capsys, "verify", str(walk40), "--kernel-decides")
    assert code == 0, err
    assert "warning[budget]: `parse_options`" in err and "the kernel verifier decides" in err
    assert "accepted by the kernel verifier" in out
    processed = int(out.split("parse_options: ")[1].split(" instructions processed")[0]
                    .replace(",", ""))
    assert processed < 1_000_000

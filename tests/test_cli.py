"""The `etran` command line: outputs, exit codes, and one clear line for every bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
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


def _processed(out: str, hook: str) -> tuple[int, bool]:
    line = next(ln for ln in out.splitlines() if f" {hook}: " in ln)
    return int(line.split("verifier ~")[1].split(" of")[0].replace(",", "")), \
        "replayed over the compiled instructions" in line


def test_check_shows_the_estimate_of_the_compiled_hooks(capsys: pytest.CaptureFixture[str]) -> None:
    """`check` compiles and replays each XDP/egress/gen hook: DCTCP's estimates are the
    replay's (within 1.5x of the kernel's count), far below the source model's, which
    `--source-only` shows; a @timer handler keeps the source model's. The instructions
    shown are the compiled hook's."""
    code, out, _ = run(capsys, "check", DCTCP)
    assert code == 0
    code, fast, _ = run(capsys, "check", "--source-only", DCTCP)
    assert code == 0
    from etran.backend.objfile import read_object
    from etran.pipeline import compile_file
    code = {p.name: p.slot_count + sum(f.slot_count for f in p.subprograms)
            for p in read_object(compile_file(Path(DCTCP)).elf).programs}
    for hook in ("rx", "tx"):
        (precise, replayed), (loose, source_replayed) = _processed(out, hook), _processed(fast, hook)
        assert replayed and not source_replayed and precise < loose / 2, (out, fast)
        # the compiled hook's instructions, exactly, where --source-only estimates them
        assert f" {hook}: {code[hook]:,} instructions," in out
        assert f" {hook}: ~" in fast
    assert _processed(out, "rto_expired") == _processed(fast, "rto_expired")


def test_check_refuses_what_the_replay_finds_over_the_limit(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Once compiled, the check decides by the estimate it shows: a hook the source model
    puts within the limit but the replay over it is refused (the source model can be below
    the kernel's count, rarely). Here the source model is made to say 10 and the limit
    lowered below DCTCP's replayed `rx`; `--source-only`, which does not compile, accepts."""
    from dataclasses import replace

    import etran.analysis.budget as budget
    real = budget.estimate_hook
    monkeypatch.setattr(budget, "estimate_hook", lambda hook: replace(real(hook), processed=10))
    code, out, _ = run(capsys, "check", DCTCP)
    assert code == 0
    rx, replayed = _processed(out, "rx")
    assert replayed and rx > 10
    monkeypatch.setattr(budget, "MAX_PROCESSED", rx - 1)
    code, out, err = run(capsys, "check", DCTCP)
    assert code == 1 and "ok" not in out
    assert f"`rx` may make the verifier process about {rx:,} instructions (replayed over " \
        f"the compiled instructions); the kernel stops at {rx - 1:,}" in err
    assert "the source estimate was about 10" in err and "`tx`" not in err
    code, out, _ = run(capsys, "check", "--source-only", DCTCP)
    assert code == 0


def test_check_source_only_cannot_ask_the_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "check", "--source-only", "--kernel-decides", DCTCP)
    assert code == 2 and "--source-only" in err and "one or the other" in err


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


HEAVY = ("llvmlite", "elftools", "lark", "pyroute2", "etran.runtime.libbpf", "etran.runtime.loader")
# What only the runtime's commands need (`up`, `status`, `nc`, `rpc`, `trace`, ...).
RUNTIME = ("etran.runtime", "etran.cli.runtime_commands", "etran.cli.nc", "etran.cli.rpc",
           "etran.cli.trace")


@pytest.mark.parametrize(("argv", "allowed"), [
    (["check", "--source-only", DCTCP], ()),
    (["check", DCTCP], ("llvmlite",)),
    (["build", DCTCP, "-o", "/dev/null"], ("llvmlite",)),
    (["disasm", DCTCP], ("llvmlite",)),
    (["--help"], ()),
])
def test_commands_import_only_what_they_use(argv: list[str], allowed: tuple[str, ...]) -> None:
    """Start-up time is most of a command's time: `check --source-only` needs no code
    generator (`check` compiles, to replay the compiled hooks), and no
    command that stays out of the kernel needs pyroute2 or libbpf (bench/compile.py times
    the processes). A program in the language is parsed without lark (lark parses what
    Python's parser cannot show to be in the language, and reports syntax errors), an
    object is read back without pyelftools, and the runtime's commands (`up`, `nc`, ...)
    are registered only when the command line may name one (`--help` lists them)."""
    probe = ("import sys, runpy; sys.argv = ['etran', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('etran', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print(' '.join(sorted(m for m in sys.modules)), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True,
                          text=True, cwd=ROOT)
    loaded = set(done.stderr.split()[-1000:]) if done.stderr else set()
    assert "etran.cli.main" in loaded, done.stderr[-2000:]
    heavy = {m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY}
    assert {m for m in heavy if not (allowed and m.startswith(allowed))} == set()
    if argv == ["--help"]:  # lists every command
        assert "etran.cli.runtime_commands" in loaded and " up " in done.stdout
    else:
        assert {m for m in loaded if m.startswith(RUNTIME)} == set()


def test_disasm_interleaves_dsl_lines(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "disasm", DCTCP, "--hook", "rx")
    assert code == 0
    assert "; if eth is None or eth.proto != ETH_P_IP: @ dctcp.py:" in out
    assert "call bpf_map_lookup_elem#1" in out and "map[conns]" in out
    assert "rx: " in out.splitlines()[-1] and "instructions" in out.splitlines()[-1]
    # the peephole passes' nops are shown as such, and counted apart
    nops = [line for line in out.splitlines() if line.endswith("goto pc+0  ; nop")]
    assert nops and f"once loaded ({len(nops)} nops removed)" in out.splitlines()[-1]


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


def test_a_parser_for_one_command_has_what_it_needs() -> None:
    """`build_parser(argv)` leaves the runtime's commands out for the compiler's own: the
    same usage errors as the whole parser's, and every command listed for an unknown one."""
    import contextlib
    import io

    from etran.cli.main import build_parser

    def usage_error(argv: list[str], whole: bool = False) -> str:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), pytest.raises(SystemExit):
            (build_parser() if whole else build_parser(argv)).parse_args(argv)
        return err.getvalue()

    for argv in (["build"], ["check", "a.py", "--nope"], ["--kernel-decides", "build"], ["disasm"]):
        assert usage_error(argv) == usage_error(argv, whole=True)
    unknown = usage_error(["frobnicate"])
    assert "invalid choice: 'frobnicate'" in unknown and "'up'" in unknown and "'build'" in unknown
    assert build_parser(["up"]).format_help() == build_parser().format_help()


@pytest.mark.kernel
def test_verify_prints_kernel_statistics(kernel: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "verify", DCTCP)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"{DCTCP}: accepted by the kernel verifier"
    for line, hook in zip(lines[1:3], ("rx", "tx")):
        assert line.startswith(f"  {hook}: accepted by the kernel verifier, ")
        assert " instructions processed (checker estimate " in line
        assert " states (peak " in line and " instructions loaded, verified in " in line
    assert lines[3].startswith("  rto_expired: no program of its own: the kernel verifies it "
                               "as a callback inside the hooks that start its timer")
    assert len(lines) == 4


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
    assert out.startswith("  firewall: accepted by the kernel verifier, ")
    assert " instructions processed (checker estimate " in out.splitlines()[0]


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
        kernel: None, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The option walk of tcp_options with 80 steps: the source-level estimate is over
    1,000,000 processed instructions (it is pessimistic), the kernel needs about 47,000.
    The checker's second opinion, the replay over the compiled instructions, accepts it;
    with the replay given no time (as when it cannot tell), the checker refuses it and
    `--kernel-decides` lets the kernel decide."""
    source = (ROOT / "examples" / "tcp_options.py").read_text()
    assert "MAX_OPTIONS = 10\n" in source
    walk80 = tmp_path / "walk80.py"
    walk80.write_text(source.replace("MAX_OPTIONS = 10\n", "MAX_OPTIONS = 80\n"))
    code, out, err = run(capsys, "check", str(walk80))
    assert code == 0, err
    replayed = int(out.split("verifier ~")[1].split(" of 1,000,000 processed")[0].replace(",", ""))
    assert "processed (replayed over the compiled instructions)" in out
    code, out, err = run(capsys, "verify", str(walk80))
    assert code == 0, err
    kernel_count = int(out.split("accepted by the kernel verifier, ")[1].split(" instructions")[0]
                       .replace(",", ""))
    assert kernel_count <= replayed <= 3 * kernel_count
    assert f"(checker estimate {replayed:,})" in out
    from etran.analysis import replay
    monkeypatch.setattr(replay, "REPLAY_SECONDS", 0.0)
    code, out, err = run(capsys, "check", str(walk80))
    assert code == 1 and "error[budget]: `parse_options` may make the verifier process" in err
    assert "; replayed over the compiled instructions, more than 1,000,000 (or more than 0 s " \
        "to tell);" in err
    assert "`--kernel-decides` (on check, verify, build, run, fuzz and up)" in err
    assert run(capsys, "verify", str(walk80))[0] == 1
    code, out, err = run(capsys, "verify", str(walk80), "--kernel-decides")
    assert code == 0, err
    assert "warning[budget]: `parse_options`" in err and "the kernel verifier decides" in err
    assert "accepted by the kernel verifier" in out
    verdict = out.split("  parse_options: ")[1].splitlines()[0]
    assert verdict.startswith("accepted by the kernel verifier, ")
    processed = int(verdict.split(", ")[1].split(" instructions processed")[0].replace(",", ""))
    assert processed < 1_000_000
    # `check --kernel-decides` loads it too, and shows the kernel's count next to the
    # estimate, which, once compiled, is the replay's (refine_budgets: it is not bounded by
    # REPLAY_SECONDS, the check's own replay, but by its own REFINE_SECONDS)
    code, out, err = run(capsys, "check", str(walk80), "--kernel-decides")
    assert code == 0, err
    assert "warning[budget]: `parse_options`" in err and "the kernel verifier decides" in err
    estimate = int(out.split("verifier ~")[1].split(" of 1,000,000 processed")[0].replace(",", ""))
    assert processed <= estimate <= 3 * processed
    assert "processed (replayed over the compiled instructions)" in out
    assert f"  parse_options: accepted by the kernel verifier, {processed:,} instructions " \
        f"processed (checker estimate {estimate:,})" in out
    assert f" instructions processed (checker estimate {estimate:,}), " in verdict  # verify


# ---------------------------------------------------------------- DevMap transports
DEVMAP = str(ROOT / "tests" / "data" / "devmap_forward.py")   # redirects to slot len & 3


@pytest.mark.kernel
def test_run_redirects_through_a_devmap(kernel: None,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A DevMap's slots are emptied and set to the given interfaces before the run (this
    once failed with `clear map 'ports': not supported for devmap maps`)."""
    maps = json.dumps({"ports": {"1": "lo"}})
    code, out, err = run(capsys, "run", DEVMAP, "forward", "--packet", "00" * 61,
                         "--maps", maps)  # 61 & 3 = slot 1, which holds loopback
    assert code == 0, err
    assert "XDP_REDIRECT (4)" in out and "ports[1]  " in out
    assert "the kernel and the interpreter agree" in out
    assert "forward: accepted by the kernel verifier, " in out
    code, out, err = run(capsys, "run", DEVMAP, "forward", "--packet", "00" * 60,
                         "--maps", maps)  # slot 0 is empty: the fallback
    assert code == 0, err
    assert "XDP_PASS (2)" in out and "ports[0]: empty, fell back" in out
    assert "the kernel and the interpreter agree" in out


@pytest.mark.kernel
def test_run_rejects_a_devmap_slot_the_kernel_cannot_hold(
        kernel: None, capsys: pytest.CaptureFixture[str]) -> None:
    import socket
    unused = max(index for index, _ in socket.if_nameindex()) + 1000
    packet = "00" * 60
    for contents, message in [
            ({"0": "etran-nosuch"}, "etran: --maps: ports[0]: no interface named "
             "'etran-nosuch' in this network namespace; give an interface's name or index "
             "(`ip link` lists them)"),
            ({"0": unused}, f"etran: DevMap `ports` slot 0: no interface has index {unused} in "
             "this network namespace; use an existing one (`ip link` lists them; loopback is 1)"),
            ({"2": 0}, "etran: DevMap `ports` slot 2: 0 is not an interface index; a slot holds "
             "the index of an interface (loopback is 1), or is left out"),
            ({"7": 1}, "etran: DevMap `ports` slot 7: the map has slots 0 to 3"),
            ({"0": [1]}, "etran: --maps: ports[0]: a DevMap slot holds an interface, given by "
             "name or index (\"lo\" or 1), not [1]")]:
        code, out, err = run(capsys, "run", DEVMAP, "forward", "--packet", packet,
                             "--maps", json.dumps({"ports": contents}))
        assert (code, out, err) == (1, "", message + "\n")


@pytest.mark.kernel
def test_fuzz_runs_a_devmap_transport(kernel: None, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "fuzz", DEVMAP, "--examples", "300", "--seed", "1",
                         "--save", str(tmp_path / "saved"))
    assert code == 0, out + err
    assert "forward: accepted by the kernel verifier, " in out
    assert "forward: 300 cases, 0 mismatches" in out
    assert not (tmp_path / "saved").exists()


# ---------------------------------------------------------------- @timer handlers
RATE_LIMITER = str(ROOT / "examples" / "rate_limiter.py")
FLOW = {"src": "10.0.0.1", "dport": 53}
BUCKETS = json.dumps({"buckets": [{"key": FLOW, "value": {"tokens": 10, "burst": 100,
                                                          "rate_bytes": 50}}]})

SLOTS = (ROOT / "tests" / "data" / "timer_slots.py").read_text()


@pytest.mark.kernel
def test_run_fires_a_timer_handler_for_a_map_entry(kernel: None,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "run", RATE_LIMITER, "refill", "--key", json.dumps(FLOW),
                         "--maps", BUCKETS)
    assert code == 0, err
    lines = out.splitlines()
    assert "  refill: accepted by the kernel verifier, " in lines[1]   # its __fire program
    assert "(checker estimate " in lines[1]
    assert lines[2] == "  @timer refill fired for buckets[{src=10.0.0.1, dport=53}]"
    assert "action" not in out and "packet" not in out       # a timer has neither
    assert "buckets.refill_timer in 1000000 ns" in out       # it re-arms itself
    assert "{src=10.0.0.1, dport=53} -> {tokens=60, burst=100, rate_bytes=50," in out
    assert lines[-1] == "the kernel and the interpreter agree"


@pytest.mark.kernel
def test_run_fires_a_timer_of_an_array_slot(kernel: None, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "slots.py"
    source.write_text(SLOTS)
    code, out, err = run(capsys, "run", str(source), "tick", "--key", "2")  # no --maps: zeroed
    assert code == 0, err
    assert "@timer tick fired for slots[2]" in out and "2 -> {delta=0, fired=100}" in out
    code, out, err = run(capsys, "run", str(source), "tick", "--key", "0x3", "--maps",
                         json.dumps({"slots": {"3": {"delta": -1, "fired": 5}}}))
    assert code == 0, err
    assert "3 -> {delta=-1, fired=9}" in out and "agree" in out


@pytest.mark.kernel
def test_run_of_a_timer_handler_reports_a_mismatch_with_exit_1(
        kernel: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import etran.pipeline as pipeline
    real = pipeline.compile_program

    def broken(program, observe=False, **kw):  # type: ignore[no-untyped-def]
        return real(program, observe=observe, defects=frozenset({"unsigned-compare"}))
    monkeypatch.setattr(pipeline, "compile_program", broken)
    source = tmp_path / "slots.py"
    source.write_text(SLOTS)
    code, out, _ = run(capsys, "run", str(source), "tick", "--key", "1", "--maps",
                       json.dumps({"slots": {"1": {"delta": -5}}}))
    assert code == 1
    assert "    kernel:      1 -> {delta=-5, fired=100}" in out
    assert "    interpreter: 1 -> {delta=-5, fired=2}" in out
    assert "MISMATCH: 1 difference" in out


@pytest.mark.kernel
def test_run_of_a_timer_handler_needs_a_well_formed_key_of_an_entry(
        kernel: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = "(e.g. --key '{\"src\": ..., \"dport\": ...}')"
    for argv, code, message in [
            ([], 2, "etran: `refill` is a @timer handler: name the entry of map `buckets` it "
             f"fires for with --key {example}"),
            (["--key", "{\"src\": 1"], 1, "etran: --key: invalid JSON: Expecting ',' "
             f"delimiter at column 10 {example}"),
            (["--key", "7"], 1, "etran: --key: buckets key: expected fields of FlowKey as a "
             f"mapping, got 7 {example}"),
            (["--key", json.dumps({"src": "10.0.0.1", "port": 53})], 1, "etran: --key: "
             "buckets key: FlowKey has no field 'port'; its fields are src, dport "
             f"{example}"),
            (["--key", json.dumps({"src": "10.0.0.1", "dport": 70000})], 1, "etran: --key: "
             f"buckets key.dport: 70000 does not fit in be16 {example}"),
            (["--key", json.dumps({"src": "10.0.0.2", "dport": 53})], 1, "etran: --key: map "
             "`buckets` has no entry {src=10.0.0.2, dport=53}; the timer fires for an entry, "
             "so give it in --maps"),
            (["--key", json.dumps(FLOW), "--packet", "00" * 60], 2, "etran: `refill` is a "
             "@timer handler, which runs without a packet: drop --packet and name the map "
             "entry it fires for with --key")]:
        assert run(capsys, "run", RATE_LIMITER, "refill", *argv, "--maps", BUCKETS) == \
            (code, "", message + "\n")
    source = tmp_path / "slots.py"
    source.write_text(SLOTS)
    assert run(capsys, "run", str(source), "tick", "--key", "4") == \
        (1, "", "etran: --key: map `slots` has slots 0 to 3, not 4\n")
    assert run(capsys, "run", RATE_LIMITER, "police", "--key", "1") == \
        (2, "", "etran: --key names the map entry a @timer handler fires for; `police` is a "
         "packet hook (@xdp): give it a frame with --packet HEX\n")
    assert run(capsys, "run", RATE_LIMITER, "police") == \
        (2, "", "etran: `police` is a packet hook (@xdp): give it a frame with --packet HEX\n")


# ---------------------------------------------------------------- ring buffers
def test_check_gives_a_ring_buffer_size_in_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", str(ROOT / "examples" / "ringbuf_events.py"))
    assert code == 0
    assert "  map events: RingBuf, 16384 bytes, records of 20 B\n" in out
    assert "  map lost: PerCpuArray, 1 entries, key 4 B, value 8 B\n" in out


# ---------------------------------------------------------------- check --kernel-decides
@pytest.mark.kernel
def test_check_kernel_decides_shows_the_kernel_verdict_next_to_the_estimate(
        kernel: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", DCTCP, "--kernel-decides")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == f"{DCTCP}: ok"
    assert lines[1].startswith("  @xdp ") and " rx: " in lines[1]   # the estimate, as before
    rx = next(line for line in lines if line.startswith("  rx: "))
    estimate = lines[1].split("verifier ~")[1].split(" of ")[0]
    assert rx.startswith("  rx: accepted by the kernel verifier, ")
    assert rx.endswith(f" instructions processed (checker estimate {estimate})")
    assert "  tx: accepted by the kernel verifier, " in out
    assert "  rto_expired: no program of its own: the kernel verifies it as a callback inside " \
        "the hooks that start its timer (checker estimate " in out
    assert "accepted by the kernel verifier" not in run(capsys, "check", DCTCP)[1]
    # the same line `etran verify` starts its statistics with: one format everywhere
    verified = run(capsys, "verify", DCTCP)[1]
    assert f"\n{rx}, " in verified


@pytest.mark.kernel
def test_check_kernel_decides_reports_a_rejection_with_the_counts(
        kernel: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import etran.pipeline as pipeline
    real = pipeline.compile_program

    def broken(program, observe=False, **kw):  # type: ignore[no-untyped-def]
        return real(program, observe=observe, defects=frozenset({"no-packet-bounds"}))
    monkeypatch.setattr(pipeline, "compile_program", broken)
    code, out, err = run(capsys, "check", FIREWALL, "--kernel-decides")
    assert code == 1 and out == ""
    assert "error[verifier]: the kernel verifier rejected `firewall`" in err
    verdict = next(line for line in err.splitlines() if line.startswith("  firewall: "))
    assert verdict.startswith("  firewall: rejected by the kernel verifier, ")
    assert " instructions processed (checker estimate " in verdict


def test_check_kernel_decides_without_a_kernel_says_what_is_missing(
        unprivileged: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    done = unprivileged("import runpy; runpy.run_module('etran', run_name='__main__')",
                        "check", FIREWALL, "--kernel-decides")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("etran: check kernel support: CAP_BPF/root is not available: "
                           "creating a BPF map was refused; run as root or grant CAP_BPF and "
                           "CAP_NET_ADMIN\n")


@pytest.mark.kernel
def test_demo_runs_the_dctcp_example(kernel: None) -> None:
    """`etran demo` (scripts/demo.sh) finds its example (it once looked under etran/). Run as
    scripts/demo.sh runs it, in a process of its own (hypothesis draws constants from the
    modules a process has imported, so importing the demo here would change what the seeded
    fuzz tests generate)."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "etran", "demo"], cwd=ROOT, text=True,
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "  rx: accepted by the kernel verifier, " in done.stdout
    assert done.stdout.rstrip().endswith("the kernel and the interpreter agree on all 5 runs")


def test_a_frame_over_the_kernels_limit_after_register_allocation_is_a_diagnostic(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """96 header fields summed one statement at a time: LLVM keeps the loaded values on the
    stack, 744 bytes. Its BPF back end used to treat that as a fatal error and exit the whole
    process; now the object is measured and the hook gets a `stack` diagnostic."""
    reads = "".join(f"    t += b.words[{i}]\n" for i in range(96))
    src = tmp_path / "sum96.py"
    src.write_text("from etran.dsl import *\n\n\nclass Block(Header):\n    words: Array[be16, 96]\n\n\n"
                   "class Sums(Struct):\n    last: u32\n\n\nsums = ArrayMap(Sums, max_entries=1)\n\n\n"
                   "@xdp\ndef total(pkt: Packet) -> int:\n    b = pkt.header(Block, 14)\n"
                   "    if b is None:\n        return XDP_PASS\n    t: u32 = 0\n" + reads +
                   "    s = sums.get(0)\n    if s is not None:\n        s.last = t\n    return XDP_PASS\n")
    code, out, _ = run(capsys, "check", "--source-only", str(src))
    assert code == 0, out   # the checker's estimate (structs and 32 bytes of spills) passes it
    for argv in (["build", str(src), "-o", str(tmp_path / "sum96.o")], ["check", str(src)]):
        code, _, err = run(capsys, *argv)
        assert code == 1, argv     # `check` compiles too: it finds what `build` finds
        assert f"{src}:16:5: error[stack]: `total` needs 744 bytes of stack once compiled" in err
        assert "the kernel allows 512" in err and "sum a long run of reads in a loop" in err

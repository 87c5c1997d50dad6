"""`etran up`, `etran status` and `etran down`, called through their handlers: exit codes,
one-line errors, and nothing left behind, including after SIGKILL of a holding `etran up`."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from etran.cli.runtime_commands import add_runtime_commands
from etran.runtime import attach, runs
from etran.runtime.maps import Map
from etran.tcp import segments as sg

from .conftest import HERE, u64s

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[2]
MAIN = ("import argparse, sys\n"
        "from etran.cli.runtime_commands import add_runtime_commands\n"
        "p = argparse.ArgumentParser(prog='etran')\n"
        "add_runtime_commands(p.add_subparsers())\n"
        "a = p.parse_args(sys.argv[1:])\n"
        "sys.exit(a.func(a))\n")


def etran(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="etran")
    add_runtime_commands(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return int(args.func(args))


def new_runs(before: set[str]) -> set[str]:
    return {r.run_id for r in runs.list_runs()} - before


def test_up_status_down(kernel: None, capsys: pytest.CaptureFixture[str]) -> None:
    before = {r.run_id for r in runs.list_runs()}
    assert etran("up", str(HERE / "xsk_echo.py"), "--topology", "two-hosts") == 0
    (run_id,) = new_runs(before)
    try:
        out = capsys.readouterr().out
        assert f"etran: run {run_id} is up: two-hosts running" in out
        assert f"host a    netns etran-{run_id}-a" in out and "@xdp rx (native)" in out
        verdict = next(line for line in out.splitlines() if line.startswith("  rx: "))
        assert verdict.startswith("  rx: accepted by the kernel verifier, ")
        assert " instructions processed (checker estimate " in verdict
        (record,) = [r for r in runs.list_runs() if r.run_id == run_id]
        assert record.persistent and not record.is_orphan()
        # the command has returned and closed its fds: the pins keep everything running
        pins = Path(record.pin_dir)
        assert sorted(p.name for p in (pins / "links").iterdir()) == \
            ["a", "b", "link-a", "link-b"]
        b = record.hosts["b"]
        assert set(attach.attached_program_ids(b["netns"])) == {"etran-eth0"}
        subprocess.run(["ip", "netns", "exec", record.hosts["a"]["netns"], sys.executable,
                        "-c", "import socket; s = socket.socket(socket.AF_INET, "
                        f"socket.SOCK_DGRAM); [s.sendto(b'x', ('{b['ip']}', 9001)) "
                        "for _ in range(3)]"], check=True)
        with Map.from_pinned(str(pins / "b" / "maps" / "counters")) as counters:
            assert u64s(counters.lookup(bytes(4)))[:2] == (3, 3)
        assert etran("status") == 0
        out = capsys.readouterr().out
        assert f"run {run_id}: two-hosts running {HERE / 'xsk_echo.py'}" in out
        assert "detached (etran up)" in out
        assert "map counters (array, 1 entries)\n      0: {frames: 3, udp: 3, redirected: 0}" \
            in out  # decoded with the transport's own `Counters` declaration
        assert "rx 3 pkts, tx 3 pkts" in out  # b answers with ICMP port unreachable
    finally:
        assert etran("down", "--run", run_id) == 0
    assert f"etran: removed run {run_id}" in capsys.readouterr().out
    assert not runs.find_objects(run_id)


def test_status_shows_bytes_when_the_source_changed_or_went(
        kernel: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "echo.py"
    source.write_text((HERE / "xsk_echo.py").read_text())
    before = {r.run_id for r in runs.list_runs()}
    assert etran("up", str(source)) == 0
    (run_id,) = new_runs(before)
    try:
        capsys.readouterr()

        def status_of_run() -> str:
            assert etran("status") == 0
            out = capsys.readouterr().out
            return out[out.index(f"run {run_id}:"):].split("\nrun ", 1)[0]

        assert "0: {frames: 0, udp: 0, redirected: 0}" not in status_of_run()  # zero: hidden
        source.write_text(source.read_text().replace("    redirected: u64\n",
                                                     "    redirected: u64\n    extra: u64\n"))
        out = status_of_run()
        assert "map counters (array, 1 entries; not as declared in the source now, shown " \
            "as bytes)" in out
        source.write_text("this is not a transport")
        assert f"({source} no longer checks: map entries shown as bytes)" in status_of_run()
        source.unlink()
        assert f"(cannot read {source} (No such file or directory): map entries shown as " \
            "bytes)" in status_of_run()
    finally:
        assert etran("down", "--run", run_id) == 0


def test_up_failures_are_one_line_with_the_right_exit_code(
        kernel: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    before = {r.run_id for r in runs.list_runs()}
    assert etran("up", str(tmp_path / "missing.py")) == 2
    assert capsys.readouterr().err == f"etran: {tmp_path / 'missing.py'}: no such file\n"
    assert etran("up", str(HERE / "counter.py"), "--topology", "ring:3") == 2
    assert capsys.readouterr().err == ("etran: build topology 'ring:3': unknown topology; use "
                                       "two-hosts or incast:N\n")
    bad = tmp_path / "bad.py"
    bad.write_text("from etran.dsl import *\n\n@xdp\ndef rx(pkt: Packet) -> int:\n"
                   "    return undefined_name\n")
    assert etran("up", str(bad)) == 1
    assert "undefined_name" in capsys.readouterr().err
    # a program the verifier rejects: forced past the checker with the compiler's test switch
    from etran import pipeline
    real = pipeline.compile_file

    def broken(path: str, **kw: object) -> object:
        program = pipeline.check_file(path)
        return pipeline.compile_program(program, defects=frozenset({"no-packet-bounds"}))

    monkeypatch.setattr(pipeline, "compile_file", broken)
    assert etran("up", str(HERE / "counter.py")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("etran: load program 'count': rejected by "
                                                   "the verifier: ")
    # the kernel's count next to the checker's estimate, as for an accepted program
    assert " instructions processed (checker estimate " in err
    assert err.endswith(f"; run `etran verify {HERE / 'counter.py'} --log` for the verifier's "
                        "log\n")
    monkeypatch.setattr(pipeline, "compile_file", real)
    assert new_runs(before) == set()  # every failed `up` took down what it had built


def test_down_of_an_unknown_run_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert etran("down", "--run", "0badf0") == 2
    assert capsys.readouterr().err == ("etran: no run 0badf0; `etran status` lists the "
                                       "runs\n")


def test_without_privileges_every_command_says_run_as_root(
        unprivileged: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """The same answer whatever the machine ran before: the check comes before any state
    is read (an empty state directory once made `status` say "nothing is running")."""
    for argv in (["up", str(HERE / "counter.py")], ["status"], ["down"], ["down", "--orphans"]):
        done = unprivileged(MAIN, *argv)
        assert done.returncode == 2, done.stderr
        expected = (f"etran: {argv[0]} needs root: CAP_SYS_ADMIN and CAP_NET_ADMIN missing (it "
                    "enters the hosts' network namespaces and reads pinned BPF objects); run "
                    "as root\n")
        assert done.stderr == expected, done.stderr


def hold(file: Path) -> tuple[subprocess.Popen[str], str]:
    before = {r.run_id for r in runs.list_runs()}
    child = subprocess.Popen([sys.executable, "-c", MAIN, "up", str(file), "--topology",
                              "incast:2", "--hold"], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout is not None
    for line in child.stdout:
        if "holding" in line:
            break
    else:
        pytest.fail(f"`etran up --hold` did not come up: {child.communicate()[1]}")
    (run_id,) = new_runs(before)
    return child, run_id


def test_sigkill_of_a_holding_up_then_down_leaves_nothing(
        kernel: None, capsys: pytest.CaptureFixture[str]) -> None:
    child, run_id = hold(HERE / "xsk_echo.py")
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=10)
    assert runs.find_objects(run_id).namespaces
    assert etran("down", "--orphans") == 0
    assert f"run {run_id} (incast:2, pid {child.pid})" in capsys.readouterr().out
    assert not runs.find_objects(run_id)


def test_sigterm_of_a_holding_up_tears_it_down(kernel: None) -> None:
    child, run_id = hold(HERE / "counter.py")
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=10)
    assert child.returncode == 0, err
    assert f"etran: run {run_id} torn down" in out
    deadline = time.monotonic() + 2
    while runs.find_objects(run_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not runs.find_objects(run_id)


def test_up_kernel_decides_loads_past_a_pessimistic_estimate(
        kernel: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """tcp_options with 80 option steps: the source-level estimate is over the limit, the
    kernel takes it. With the checker's second opinion given no time (as when the replay
    cannot tell in time), `up` refuses it and `up --kernel-decides` brings it up and shows
    both numbers: the kernel's count and the estimate once compiled (`refine_budgets`: the
    replay's, bounded by its own time, not by REPLAY_SECONDS)."""
    from etran.analysis import replay
    source = (ROOT / "examples" / "tcp_options.py").read_text()
    assert "MAX_OPTIONS = 10\n" in source
    walk80 = tmp_path / "walk80.py"
    walk80.write_text(source.replace("MAX_OPTIONS = 10\n", "MAX_OPTIONS = 80\n"))
    before = {r.run_id for r in runs.list_runs()}
    monkeypatch.setattr(replay, "REPLAY_SECONDS", 0.0)
    assert etran("up", str(walk80)) == 1
    assert "error[budget]: `parse_options`" in capsys.readouterr().err
    assert new_runs(before) == set()
    assert etran("up", str(walk80), "--kernel-decides") == 0
    (run_id,) = new_runs(before)
    try:
        out, err = capsys.readouterr()
        assert "warning[budget]: `parse_options`" in err and "the kernel verifier decides" in err
        verdict = next(line for line in out.splitlines() if line.startswith("  parse_options:"))
        processed, estimate = (int(part.replace(",", "")) for part in re.fullmatch(
            r"  parse_options: accepted by the kernel verifier, ([\d,]+) instructions processed "
            r"\(checker estimate ([\d,]+)\)", verdict).groups())  # type: ignore[union-attr]
        assert processed <= estimate <= 3 * processed < 1_000_000
        assert "@xdp parse_options (native)" in out
    finally:
        assert etran("down", "--run", run_id) == 0


def test_status_gives_a_ring_buffer_size_in_bytes(kernel: None,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    before = {r.run_id for r in runs.list_runs()}
    assert etran("up", str(ROOT / "examples" / "ringbuf_events.py")) == 0
    (run_id,) = new_runs(before)
    try:
        capsys.readouterr()
        assert etran("status") == 0
        out = capsys.readouterr().out
        out = out[out.index(f"run {run_id}:"):].split("\nrun ", 1)[0]
        assert out.count("    map events (ringbuf, 16384 bytes)\n") == 2   # one per host
        assert "16384 entries" not in out
        assert "    map lost (percpu_array, 1 entries)" in out
    finally:
        assert etran("down", "--run", run_id) == 0


def test_up_puts_a_link_program_on_what_a_host_sends(
        kernel: None, capsys: pytest.CaptureFixture[str]) -> None:
    """`--link a=etran/transports/tcp_link.py`: the program runs on the switch port facing a,
    its maps are pinned beside the hosts', and it sees (and here drops) a's TCP data."""
    link_program = ROOT / "etran" / "transports" / "tcp_link.py"
    before = {r.run_id for r in runs.list_runs()}
    assert etran("up", str(HERE / "counter.py"), "--link", f"a={link_program}") == 0
    (run_id,) = new_runs(before)
    try:
        out = capsys.readouterr().out
        assert "link to a: @xdp tcp_link on etran-a (what a sends)" in out
        (record,) = [r for r in runs.list_runs() if r.run_id == run_id]
        maps = Path(record.pin_dir) / "link-a" / "maps"
        with Map.from_pinned(str(maps / "config")) as config:
            config.update(bytes(4), (1).to_bytes(4, "little") + bytes(12))  # drop every one
        a, b = record.hosts["a"], record.hosts["b"]
        segment = sg.build(src_mac=bytes.fromhex(a["mac"].replace(":", "")),
                           dst_mac=bytes.fromhex(b["mac"].replace(":", "")), src=a["ip"],
                           dst=b["ip"], sport=40000, dport=5001, flags=sg.ACK,
                           payload=b"data")
        subprocess.run(["ip", "netns", "exec", a["netns"], sys.executable, "-c",
                        "import socket, sys; s = socket.socket(socket.AF_PACKET, "
                        "socket.SOCK_RAW); s.bind(('etran-eth0', 0)); "
                        "s.send(bytes.fromhex(sys.argv[1]))", segment.hex()], check=True)
        with Map.from_pinned(str(maps / "state")) as state:
            seen, dropped, marked = u64s(state.lookup(bytes(4)))[:3]
        assert (seen, dropped, marked) == (1, 1, 0)
    finally:
        assert etran("down", "--run", run_id) == 0
    assert not runs.find_objects(run_id)


def test_up_refuses_a_bad_link_argument(capsys: pytest.CaptureFixture[str]) -> None:
    assert etran("up", str(HERE / "counter.py"), "--link", "z=nothing.py") == 2
    assert "--link z=nothing.py: write HOST=PROGRAM.py with HOST one of a, b" in \
        capsys.readouterr().err

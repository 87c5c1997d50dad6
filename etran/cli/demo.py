"""`etran demo`: the whole pipeline on the DCTCP example, with the kernel and the interpreter side by side.

Check the transport, build the BPF object, load it into the kernel verifier,
then run a short conversation (ACKs, an ECN-marked ACK, a duplicate ACK, a
segment leaving through egress) in the kernel and in the reference
interpreter, showing both results for each frame.
"""
from __future__ import annotations

from pathlib import Path

from etran.cli.show import show_side_by_side
from etran.cli.verifier_report import verdict_lines
from etran.differential.harness import KernelHarness, compare
from etran.interp.interpreter import Interpreter
from etran.interp.state import MapStore, frame_input
from etran.pipeline import check_source, compile_program, refine_budgets
from etran.runtime.loader import check_kernel_support, load_object
from etran.testing.packets import tcp_frame

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dctcp.py"
LOCAL, REMOTE = "10.0.0.1", "10.0.0.2"


def _title(text: str) -> None:
    print(f"\n== {text}")


def demo() -> int:
    check_kernel_support()
    src = EXAMPLE.read_text()
    _title(f"check {EXAMPLE.name}")
    program = check_source(src, str(EXAMPLE))
    for h in program.hooks:
        est = program.budgets[h.name]
        print(f"  {h.name:<12} @{h.hook:<7} ~{est.insns} instructions, verifier ~{est.processed} "
              f"processed (limit 1,000,000), stack {est.stack}/512 bytes")

    _title("build")
    obj = compile_program(program)
    refine_budgets(obj)
    print(f"  {len(obj.elf)} bytes of BPF ELF: programs "
          + ", ".join(f"{p.name} (@{p.hook})" for p in obj.programs)
          + "; maps " + ", ".join(m.name for m in obj.maps))

    _title("verify in the kernel")
    with load_object(obj.elf, name="dctcp") as loaded:
        for line in verdict_lines(program, loaded):
            print(line)

    observed = compile_program(program, observe=True)
    interp = Interpreter(program)
    key = {"local_ip": LOCAL, "remote_ip": REMOTE, "local_port": 5000, "remote_port": 80}
    conn = {"snd_una": 1000, "snd_nxt": 30000, "cwnd": 14480, "ssthresh": 65535,
            "window_end": 20000}

    def ack(n: int, ce: bool = False) -> bytes:
        return tcp_frame(src=REMOTE, dst=LOCAL, sport=80, dport=5000, ack=n, tos=3 if ce else 0)

    steps = [("rx", "an ACK for one segment", ack(2448)),
             ("rx", "a CE-marked ACK", ack(3896, ce=True)),
             ("rx", "an ACK ending the window (DCTCP cuts the window)", ack(22000, ce=True)),
             ("rx", "a duplicate ACK", ack(22000)),
             ("tx", "a 100-byte segment leaving (sequence stamped, RTO armed)",
              tcp_frame(b"x" * 100, src=LOCAL, dst=REMOTE, sport=5000, dport=80))]
    mismatches = 0
    with KernelHarness(observed) as runner:
        store = MapStore(program, runner.ncpu)
        store.set("conns", key, conn)
        for hook, what, frame in steps:
            _title(f"run {hook}: {what}")
            inp = frame_input(frame, maps=store)
            k = runner.run(hook, inp)
            i = interp.run(hook, inp)
            diffs = compare(k, i)
            mismatches += bool(diffs)
            print(show_side_by_side(program, frame, store, k, i, diffs))
            store = i.maps
    _title("result")
    if mismatches:
        print(f"  {mismatches} of {len(steps)} runs differ")
        return 1
    print(f"  the kernel and the interpreter agree on all {len(steps)} runs")
    return 0

"""Where does the replay (etran/analysis/replay.py) part from the kernel? Per-instruction visit
counts of both, for one hook of one program:

    .venv/bin/python research/replay_debug.py examples/tcp_options.py parse_options [--log out.txt]

The kernel's counts come from its level-2 log (every processed instruction is printed once,
"N: (op) ..."); the replay's from an instrumented Explorer. Prints the instructions whose
counts differ most.
"""
from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etran.analysis import replay  # noqa: E402


class Counting(replay.Explorer):
    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.visits: collections.Counter[int] = collections.Counter()
        self.prunes: collections.Counter[int] = collections.Counter()
        self.seq: list[tuple[str, int]] = []

    def visited(self, idx, cur):
        r = super().visited(idx, cur)
        if r:
            self.prunes[idx] += 1
            self.seq.append(("safe", idx))
        return r

    def step(self, i, ins, st):
        self.visits[i] += 1
        self.seq.append(("insn", i))
        return super().step(i, ins, st)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("hook")
    ap.add_argument("--log", help="write the kernel's log here")
    ap.add_argument("--top", type=int, default=40)
    a = ap.parse_args()
    from etran.pipeline import check_source, compile_program
    from etran.runtime.loader import load_object
    src = Path(a.source).read_text()
    program = check_source(src, Path(a.source).name, enforce_rules=False)
    obj = compile_program(program)
    with load_object(obj.elf, log_level=2 | 4, log_size=1 << 24) as loaded:
        log = loaded.programs[a.hook].verifier_log
        kcount = loaded.programs[a.hook].stats.processed_insns
    if a.log:
        Path(a.log).write_text(log)
    kv: collections.Counter[int] = collections.Counter()
    ksafe: collections.Counter[int] = collections.Counter()
    kseq: list[tuple[str, int, int]] = []      # (kind, insn, log line)
    for n, line in enumerate(log.splitlines()):
        m = re.match(r"^(\d+): \(", line)
        if m:
            kv[int(m.group(1))] += 1
            kseq.append(("insn", int(m.group(1)), n))
            continue
        m = re.match(r"^(\d+): safe", line) or re.match(r"^from \d+ to (\d+): safe", line)
        if m:
            ksafe[int(m.group(1))] += 1
            kseq.append(("safe", int(m.group(1)), n))
    lay = replay.layout(obj.elf, a.hook)
    ex = Counting(lay, maps=replay.map_shapes(program))
    res = ex.run(0)
    for j, (k, r) in enumerate(zip(kseq, ex.seq)):
        if k[:2] != r:
            print(f"first divergence at step {j}: kernel {k[0]} {k[1]} (log line {k[2] + 1}), "
                  f"replay {r[0]} {r[1]}; previous kernel steps: "
                  f"{[x[:2] for x in kseq[max(0, j - 6):j]]}")
            break
    print(f"kernel {kcount} (log lines {sum(kv.values())}, safe {sum(ksafe.values())}), "
          f"replay {res.processed} (visits {sum(ex.visits.values())}, pruned "
          f"{sum(ex.prunes.values())}), states {res.total_states}")
    rows = sorted(set(kv) | set(ex.visits), key=lambda i: -abs(ex.visits[i] - kv[i]))
    from etran.backend.disasm import instruction_text as format_insn
    for i in rows[:a.top]:
        try:
            text = format_insn(lay.insns[i])
        except Exception:
            text = str(lay.insns[i])
        print(f"{i:5d} kernel {kv[i]:6d} safe {ksafe[i]:5d} | replay {ex.visits[i]:6d} "
              f"pruned {ex.prunes[i]:5d}  {text}")


if __name__ == "__main__":
    main()

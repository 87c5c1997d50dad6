"""Differential throughput: generated cases per second per hook, kernel and interpreter compared.

For every hook of every example, runs `etran.differential.inputs.fuzz_hook` (hypothesis
drawing inputs, BPF_PROG_TEST_RUN in the kernel, the reference interpreter,
a full comparison) and `etran.differential.sweep.sweep_hook` (the same inputs' builder fed
from a seeded random stream: `etran fuzz --sweep`, what long campaigns use) and reports
cases per second of each, in one process. Target: at least 2,000 cases/s for DCTCP's
ingress.

    .venv/bin/python bench/differential.py [--cases N]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etran.differential.harness import KernelHarness  # noqa: E402
from etran.differential.inputs import fuzz_hook  # noqa: E402
from etran.differential.sweep import sweep_hook  # noqa: E402
from etran.pipeline import compile_file  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--example", help="only this example (file stem)")
    args = ap.parse_args()
    print(f"{'example':<16} {'hook':<14} {'kind':<7} {'cases':>7} {'cases/s':>9} "
          f"{'sweep/s':>9} {'ratio':>6} mismatches")
    ratios = []
    dctcp = None
    for path in sorted((ROOT / "examples").glob("*.py")):
        if args.example and path.stem != args.example:
            continue
        obj = compile_file(path, observe=True)
        with KernelHarness(obj) as runner:
            for hook in obj.program.hooks:
                fuzz_hook(runner, hook.name, 100, seed=1)          # warm up
                r = fuzz_hook(runner, hook.name, args.cases, seed=2)
                w = sweep_hook(runner, hook.name, args.cases, seed=2)
                ratios.append(w.rate / r.rate)
                print(f"{path.stem:<16} {hook.name:<14} {hook.hook:<7} {r.cases:>7} "
                      f"{r.rate:>9,.0f} {w.rate:>9,.0f} {ratios[-1]:>6.2f} "
                      f"{r.mismatches + w.mismatches}")
                if path.stem == "dctcp" and hook.name == "rx":
                    dctcp = max(r.rate, w.rate)
    if ratios:
        ratios.sort()
        print(f"\nsweep / hypothesis cases per second: median {ratios[len(ratios) // 2]:.2f}, "
              f"min {ratios[0]:.2f}, max {ratios[-1]:.2f}")
    if dctcp is not None:
        verdict = "meets" if dctcp >= 2000 else "MISSES"
        print(f"\nDCTCP ingress: {dctcp:,.0f} differential cases/s on one core "
              f"({verdict} the 2,000/s target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

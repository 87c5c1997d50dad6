"""A long run of the generated-program properties, with statistics (not collected by pytest).

    .venv/bin/python tests/property/campaign.py 2000 --inputs 5 --jobs 2 --out /tmp/campaign

For each of N generated programs (the same ones for the same `--seed`, drawn
independently by `etran.testing.progen.sample_programs`): does the checker
accept it (rules tallied otherwise); does the kernel verifier load it, within
the checker's estimate (worst ratios kept); do the kernel and the interpreter
agree on `--inputs` random inputs. Programs refused only by the budget/stack
rules are loaded anyway, with the limits lifted, to count false refusals.
Every failing program is written to `--out` with what went wrong.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import sys
import time
import traceback
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from etran.differential.harness import KernelHarness, compare
from etran.dsl.diagnostics import DiagnosticError
from etran.interp.interpreter import Interpreter
from etran.ir import tir
from etran.pipeline import (
    check_source,
    compile_program,
)
from etran.runtime.errors import VerifierError
from etran.runtime.loader import LoadedObject, load_object
from etran.testing.progen import sample_programs
from etran.testing.strategies import inputs_from_bytes, usable_cpus


def one(job: tuple[int, str, tuple[str, ...], int]) -> dict[str, Any]:
    idx, source, hooks, n_inputs = job
    out: dict[str, Any] = {"idx": idx}
    try:
        program = check_source(source, "generated.py")
    except DiagnosticError as e:
        out["rejected"] = sorted({d.rule for d in e.diagnostics})
        out["detail"] = "\n".join(map(str, e.diagnostics[:3]))
        if set(out["rejected"]) <= {"budget", "stack"}:
            out.update(_lifted(source))
        return out
    except Exception as e:
        out["rejected"] = [f"crash:{type(e).__name__}"]
        out["detail"] = traceback.format_exc(limit=-3)
        return out
    try:
        observed = compile_program(program, observe=True)
        # without probes the observed build is the plain one: its load gives the counts
        plain = compile_program(program) if observed.probes else None
    except Exception as e:
        out["failure"] = f"compile crash: {type(e).__name__}"
        out["detail"] = traceback.format_exc(limit=-3)
        return out
    if plain is not None:
        try:
            with load_object(plain.elf) as loaded:
                out["budget"] = _counts(program, loaded)
        except VerifierError as e:
            out["failure"] = "verifier"
            out["detail"] = str(e)[:2000]
            return out
    interp = Interpreter(program)
    try:
        try:
            runner = KernelHarness(observed)
        except VerifierError as e:
            out["failure"] = "verifier"
            out["detail"] = str(e)[:2000]
            return out
        with runner:
            if plain is None:
                out["budget"] = _counts(program, runner.loaded)
            rng = random.Random(idx)
            frames = [rng.randbytes(rng.randint(0, 300)) for _ in range(n_inputs)]
            inputs = inputs_from_bytes(program, runner.ncpu, frames, rng.randbytes(400),
                                       usable_cpus(runner.ncpu))
            store = inputs[0].maps
            for step, first in enumerate(inputs):
                inp = replace(first, maps=store)
                hook = rng.choice(hooks)
                k = runner.run(hook, inp)
                try:
                    mine = interp.run(hook, inp)
                except Exception:
                    out["failure"] = "interpreter crash"
                    out["detail"] = traceback.format_exc(limit=-3)
                    return out
                diffs = compare(k, mine)
                if diffs:
                    out["failure"] = "mismatch"
                    out["detail"] = (f"step {step} hook {hook} cpu {inp.cpu} packet "
                                     f"{inp.packet.hex()}\n" + "\n".join(map(str, diffs))[:3000])
                    return out
                store = mine.maps
    except Exception as e:
        out["failure"] = f"runner: {type(e).__name__}"
        out["detail"] = traceback.format_exc(limit=-3)
    return out


def _counts(program: tir.Program, loaded: LoadedObject) -> dict[str, tuple[int, int]]:
    """Each hook's (kernel count, checker estimate)."""
    return {n: (p.stats.processed_insns, program.budgets[n].processed)
            for n, p in loaded.programs.items()}


def _lifted(source: str) -> dict[str, Any]:
    """Load a program refused for budget/stack with the limits lifted: does the kernel agree?"""
    try:
        program = check_source(source, "generated.py", enforce_rules=False)
        with load_object(compile_program(program).elf) as loaded:
            return {"lifted": "kernel accepts",
                    "lifted_budget": {n: (p.stats.processed_insns, program.budgets[n].processed)
                                      for n, p in loaded.programs.items()}}
    except VerifierError as e:
        return {"lifted": "kernel rejects: " + str(e).splitlines()[0][:200]}
    except Exception as e:
        return {"lifted": f"error {type(e).__name__}"}


def _gist(detail: str) -> str:
    """A verifier message without register numbers and offsets, to group failures."""
    import re
    msg = detail.split("rejected by the verifier: ")[-1].splitlines()[0]
    return re.sub(r"\bR\d+|-?\d+", "#", msg)[:100]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("--inputs", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--statements", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="/tmp/progen-campaign")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    progs = sample_programs(a.n, a.statements, seed=a.seed)
    t1 = time.time()
    jobs = [(i, p.source, p.hooks, a.inputs) for i, p in enumerate(progs)]
    results = []
    # spawn, not fork: a forked worker can inherit a held lock and hang; a stuck job is skipped
    with multiprocessing.get_context("spawn").Pool(a.jobs, maxtasksperchild=50) as pool:
        pending = [(j, pool.apply_async(one, (j,))) for j in jobs]
        for j, res in pending:
            try:
                results.append(res.get(timeout=300))
            except multiprocessing.TimeoutError:
                results.append({"idx": j[0], "failure": "timeout", "detail": "no result in 300 s"})
            if len(results) % 100 == 0:
                print(f"  {len(results)} programs done, {time.time() - t1:.0f}s", flush=True)
    t2 = time.time()
    rejected = Counter(",".join(r["rejected"]) for r in results if "rejected" in r)
    failures = Counter(r["failure"] for r in results if "failure" in r)
    verifier = Counter(_gist(r["detail"]) for r in results if r.get("failure") == "verifier")
    lifted = Counter(r["lifted"].split(":")[0] for r in results if "lifted" in r)
    ratios = sorted(((k / max(e, 1), k, e, r["idx"], h) for r in results if "budget" in r
                     for h, (k, e) in r["budget"].items()), reverse=True)
    over = [x for x in ratios if x[0] > 1]
    for r in results:
        if "failure" in r or "rejected" in r or any(k > e for k, e in r.get("budget", {}).values()):
            tag = r.get("failure") or ("budget" if "budget" in r else ",".join(r["rejected"]))
            name = f"{r['idx']:05d}_{tag.replace(' ', '_').replace(':', '').replace(',', '_')}.py"
            text = progs[r["idx"]].source + "\n# " + json.dumps({k: v for k, v in r.items()
                                                                if k != "detail"}) + "\n# " + \
                str(r.get("detail", "")).replace("\n", "\n# ") + "\n"
            (out / name).write_text(text)
    n = len(results)
    print(f"programs: {n} distinct; generated in {t1 - t0:.1f}s, checked/loaded/run in {t2 - t1:.1f}s "
          f"({n / (t2 - t0):.1f} programs/s overall, {a.jobs} jobs, {a.inputs} inputs each)")
    print(f"accepted: {n - sum(rejected.values())} ({100 * (n - sum(rejected.values())) / n:.1f}%); "
          f"rejected by rule: {dict(rejected)}")
    print(f"budget/stack refusals loaded with limits lifted: {dict(lifted)}")
    print(f"failures: {dict(failures)}")
    for msg, k in verifier.most_common():
        print(f"  {k:4d}  verifier: {msg}")
    if ratios:
        looseness = sorted(e / max(k, 1) for r in results if "budget" in r
                           for k, e in r["budget"].values())
        q = lambda f: looseness[min(int(f * len(looseness)), len(looseness) - 1)]  # noqa: E731
        print(f"estimate/kernel over {len(looseness)} accepted hooks: min {looseness[0]:.2f}, "
              f"p10 {q(0.1):.2f}, median {q(0.5):.2f}, p90 {q(0.9):.1f}")
    refused_counts = sorted(max(k for k, _ in r["lifted_budget"].values())
                            for r in results if "lifted_budget" in r)
    if refused_counts:
        print(f"false refusals: the kernel processed {refused_counts[0]:,} to "
              f"{refused_counts[-1]:,} instructions (median "
              f"{refused_counts[len(refused_counts) // 2]:,}) on the programs refused for budget")
    print(f"budget: {len(over)} hooks above the estimate; worst ratios (kernel/estimate):")
    for ratio, k, e, idx, h in ratios[:8]:
        print(f"  {ratio:.2f}  kernel {k} estimate {e}  program {idx} hook {h}")
    feats = Counter(f for p in progs for f in p.features)
    print("feature use:", dict(sorted(feats.items(), key=lambda x: -x[1])))
    print(f"details in {out}")


if __name__ == "__main__":
    main()

"""A long run of the generated-program properties, with statistics (not collected by pytest).

    .venv/bin/python tests/property/campaign.py 2000 --inputs 5 --jobs 2 --out /tmp/campaign

For each of N generated programs (the same ones for the same `--seed`, drawn
independently by `etran.testing.progen.sample_program` in the workers; `--start K` runs
programs K to K+N-1, so a long campaign can run in parts): does the checker
accept it (rules tallied otherwise); does the kernel verifier load it, within
the checker's estimate (worst ratios kept); do the kernel and the interpreter
agree on `--inputs` random inputs. Programs refused only by the budget/stack
rules are loaded anyway, with the limits lifted, to count false refusals.
Every failing program is written to `--out` with what went wrong, and every result, as
it arrives, to `--out`/results.jsonl (a campaign stopped early keeps what it ran).
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

from etran.analysis.budget import MAX_PROCESSED, check_refined
from etran.differential.harness import KernelHarness, compare
from etran.dsl.diagnostics import DiagnosticError, DiagnosticSink
from etran.interp.interpreter import Interpreter
from etran.ir import tir
from etran.pipeline import (
    check_source,
    compile_for_testing,
    compile_program,
)
from etran.runtime.errors import VerifierError
from etran.runtime.loader import LoadedObject, load_object
from etran.testing.progen import sample_program
from etran.testing.strategies import inputs_from_bytes, usable_cpus


def one(job: tuple[int, int, int, int]) -> dict[str, Any]:
    idx, seed, statements, n_inputs = job
    gen = sample_program(idx, statements, seed=seed)
    out: dict[str, Any] = {"idx": idx, "features": sorted(gen.features)}
    try:
        _run(gen.source, gen.hooks, idx, n_inputs, out)
    finally:
        if "failure" in out or "rejected" in out or any(
                k > min(e, s) for k, e, _, s in out.get("budget", {}).values()):
            out["source"] = gen.source
    return out


def _run(source: str, hooks: tuple[str, ...], idx: int, n_inputs: int,
         out: dict[str, Any]) -> dict[str, Any]:
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
    source_estimates = {n: e.processed for n, e in program.budgets.items()}
    try:
        observed, plain = compile_for_testing(program)
    except Exception as e:
        out["failure"] = f"compile crash: {type(e).__name__}"
        out["detail"] = traceback.format_exc(limit=-3)
        return out
    # `etran check` decides by the estimate once compiled (check_refined) as well
    refined = DiagnosticSink()
    check_refined(program, refined)
    if refined.has_errors:
        out["rejected"] = ["budget"]
        out["detail"] = "\n".join(map(str, refined.items[:3]))
        out.update(_lifted(source))
        return out
    if plain is not None:
        try:
            with load_object(plain.elf) as loaded:
                out["budget"] = _counts(program, loaded, source_estimates)
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
                out["budget"] = _counts(program, runner.loaded, source_estimates)
            rng = random.Random(idx)
            frames = [rng.randbytes(rng.randint(0, 300)) for _ in range(n_inputs)]
            inputs = inputs_from_bytes(program, runner.ncpu, frames, rng.randbytes(400),
                                       usable_cpus(runner.ncpu))
            store = inputs[0].maps
            for step, first in enumerate(inputs):
                inp = replace(first, maps=store)
                hook = rng.choice(hooks)
                k = runner.run(hook, inp)
                out["cases"] = step + 1
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


def _counts(program: tir.Program, loaded: LoadedObject,
            source: dict[str, int]) -> dict[str, tuple[int, int, bool, int]]:
    """Each hook's kernel count, estimate once compiled (`refine_estimates`), whether that
    is the replay's, and the estimate `etran check` gave."""
    return {n: (p.stats.processed_insns, program.budgets[n].processed,
                program.budgets[n].replayed, source[n]) for n, p in loaded.programs.items()}


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
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--report", action="store_true",
                    help="run nothing: summarize --out's results.jsonl (the parts run so far)")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.report:
        by_idx = {}
        for line in (out / "results.jsonl").read_text().splitlines():
            r = json.loads(line)
            by_idx[r["idx"]] = r
        summarize(list(by_idx.values()), out, a.jobs, a.inputs, 0.0)
        return
    t1 = time.time()
    jobs = [(i, a.seed, a.statements, a.inputs) for i in range(a.start, a.start + a.n)]
    results = []
    # spawn, not fork: a forked worker can inherit a held lock and hang; a stuck job is skipped
    with multiprocessing.get_context("spawn").Pool(a.jobs, maxtasksperchild=200) as pool, \
            (out / "results.jsonl").open("a") as log:
        pending = [(j, pool.apply_async(one, (j,))) for j in jobs]
        for j, res in pending:
            try:
                results.append(res.get(timeout=300))
            except multiprocessing.TimeoutError:
                results.append({"idx": j[0], "failure": "timeout", "detail": "no result in 300 s"})
            log.write(json.dumps(results[-1]) + "\n")
            if len(results) % 500 == 0:
                log.flush()
                print(f"  {len(results)} programs done, {time.time() - t1:.0f}s", flush=True)
    t2 = time.time()
    summarize(results, out, a.jobs, a.inputs, t2 - t1)


def summarize(results: list[dict[str, Any]], out: Path, jobs: int, inputs: int,
              seconds: float) -> None:
    """Print the campaign's statistics and write each failing program to `out`."""
    rejected = Counter(",".join(r["rejected"]) for r in results if "rejected" in r)
    failures = Counter(r["failure"] for r in results if "failure" in r)
    verifier = Counter(_gist(r["detail"]) for r in results if r.get("failure") == "verifier")
    lifted = Counter(r["lifted"].split(":")[0] for r in results if "lifted" in r)
    ratios = sorted(((k / max(e, 1), k, e, r["idx"], h) for r in results if "budget" in r
                     for h, (k, e, *_) in r["budget"].items()), reverse=True)
    replayed = sorted(r["idx"] for r in results
                      if any(x[3] > MAX_PROCESSED for x in r.get("budget", {}).values()))
    over = [x for x in ratios if x[0] > 1]
    over_check = sorted(((k / max(s, 1), k, s, r["idx"], h) for r in results if "budget" in r
                         for h, (k, _, _, s) in r["budget"].items() if k > s), reverse=True)
    for r in results:
        if "failure" in r or "rejected" in r or any(
                k > min(e, s) for k, e, _, s in r.get("budget", {}).values()):
            tag = r.get("failure") or ("budget" if "budget" in r else ",".join(r["rejected"]))
            name = f"{r['idx']:05d}_{tag.replace(' ', '_').replace(':', '').replace(',', '_')}.py"
            text = r.get("source", "") + "\n# " + json.dumps(
                {k: v for k, v in r.items() if k not in ("detail", "source")}) + "\n# " + \
                str(r.get("detail", "")).replace("\n", "\n# ") + "\n"
            (out / name).write_text(text)
    n = len(results)
    if seconds:
        print(f"programs: {n} distinct; generated, checked, loaded and run in {seconds:.1f}s "
              f"({n / seconds:.1f} programs/s overall, {jobs} jobs, {inputs} inputs each)")
    else:
        print(f"programs: {n} distinct (indexes {min(r['idx'] for r in results)} to "
              f"{max(r['idx'] for r in results)})")
    print(f"accepted: {n - sum(rejected.values())} ({100 * (n - sum(rejected.values())) / n:.1f}%); "
          f"rejected by rule: {dict(rejected)}")
    print(f"budget/stack refusals loaded with limits lifted: {dict(lifted)}")
    print(f"failures: {dict(failures)}")
    for msg, k in verifier.most_common():
        print(f"  {k:4d}  verifier: {msg}")
    if ratios:
        for label, pick in (("once compiled (refine_estimates; what `etran check` shows)", 1),
                            ("of the source model (`etran check --source-only`)", 3)):
            loose = sorted(x[pick] / max(x[0], 1) for r in results if "budget" in r
                           for x in r["budget"].values())
            q = lambda f: loose[min(int(f * len(loose)), len(loose) - 1)]  # noqa: E731,B023
            print(f"estimate/kernel {label}, over {len(loose)} accepted hooks: min "
                  f"{loose[0]:.2f}, p10 {q(0.1):.2f}, median {q(0.5):.2f}, p90 {q(0.9):.1f}, "
                  f"p95 {q(0.95):.1f}")
    cases = sum(r.get("cases", 0) for r in results)
    print(f"differential cases run: {cases:,}")
    refused_counts = sorted(max(k for k, _ in r["lifted_budget"].values())
                            for r in results if "lifted_budget" in r)
    if refused_counts:
        print(f"false refusals: the kernel processed {refused_counts[0]:,} to "
              f"{refused_counts[-1]:,} instructions (median "
              f"{refused_counts[len(refused_counts) // 2]:,}) on the programs refused for budget")
    print(f"accepted on the replay's estimate (the source estimate refused a hook): "
          f"{len(replayed)} programs {replayed[:50]}")
    print(f"budget: {len(over)} hooks above the estimate; worst ratios (kernel/estimate):")
    for ratio, k, e, idx, h in ratios[:8]:
        print(f"  {ratio:.2f}  kernel {k} estimate {e}  program {idx} hook {h}")
    print(f"the source model's estimate (or the replay's where it refused; what `etran check "
          f"--source-only` decides by, before compiling): "
          f"{len(over_check)} hooks below the kernel's count")
    for ratio, k, e, idx, h in over_check[:8]:
        print(f"  {ratio:.2f}  kernel {k} estimate {e}  program {idx} hook {h}")
    feats = Counter(f for r in results for f in r.get("features", ()))
    print("feature use:", dict(sorted(feats.items(), key=lambda x: -x[1])))
    print(f"details in {out}")


if __name__ == "__main__":
    main()

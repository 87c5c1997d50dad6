"""Compare two estimates of the kernel verifier's work with the kernel's own count.

    .venv/bin/python research/estimate_models.py                    # examples, shapes, regressions
    .venv/bin/python research/estimate_models.py --generated 300 --seed 9101 [--jobs 2]
    .venv/bin/python research/estimate_models.py --generated 2000 --seed 0 --refused --quiet

`--sources F.json` measures the programs of a JSON list of sources instead (e.g. drawn by an
earlier `etran.testing.progen`, the generator of an earlier measurement).
`--refused` keeps only the hooks the source estimate refuses (over 1,000,000; the ones
`etran check` replays): the other programs are neither compiled nor loaded.

For each program (hook): the kernel's `processed` count (loaded with the budget rules
lifted), the source model's estimate (`program.budgets[hook].processed` from
`check_source(enforce_rules=False)`, which never asks the replay; etran/analysis/budget.py)
and the instruction-level replay's (etran/analysis/replay.py, run here to 1,000,000), with
the ratios estimate/kernel. A ratio below 1 is a soundness miss (printed with `MISS`).
The summary gives, per model, median / p95 / max of estimate/kernel and the miss count;
`checker` is what `etran check` decides: the source estimate, or the replay's where the
source estimate is over the limit.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure(name: str, source: str, refused_only: bool = False) -> list[dict[str, Any]]:
    """One row per hook of the program: kernel count and both estimates (only the hooks the
    source estimate refuses with `refused_only`)."""
    from etran.analysis import replay
    from etran.dsl.diagnostics import DiagnosticError
    from etran.pipeline import check_source, compile_program
    from etran.runtime.errors import VerifierError
    from etran.runtime.loader import load_object
    try:
        program = check_source(source, f"{name}.py", enforce_rules=False)
        refused = {h for h, b in program.budgets.items() if b.processed > 1_000_000}
        if refused_only and not refused:
            return [{"name": name, "skip": "accepted", "accepted": True}]
        obj = compile_program(program)
    except DiagnosticError as e:
        return [{"name": name, "skip": "checker: " + ",".join(sorted({d.rule for d in e.diagnostics}))}]
    except Exception as e:
        return [{"name": name, "skip": f"compile: {type(e).__name__}"}]
    try:
        with load_object(obj.elf) as loaded:
            kernel = {h: p.stats.processed_insns for h, p in loaded.programs.items()}
    except VerifierError as e:
        return [{"name": name, "skip": "kernel rejects: " + str(e).splitlines()[0][:80]}]
    rows = []
    for hook, k in kernel.items():
        if refused_only and hook not in refused:
            continue
        row: dict[str, Any] = {"name": name, "hook": hook, "kernel": k,
                               "source": program.budgets[hook].processed if hook in program.budgets else None}
        t0 = time.perf_counter()
        try:
            res = replay.explore(obj.elf, hook, max_processed=replay.LIMIT,
                                 maps=replay.map_shapes(program))
            row["insn"] = res.estimate
            row["raw"] = res.processed
            row["complete"] = res.complete
            row["states"] = res.total_states
        except replay.Unsupported as e:
            row["insn"] = None
            row["unsupported"] = str(e)
        except Exception:
            row["insn"] = None
            row["error"] = traceback.format_exc(limit=-2)
        row["secs"] = round(time.perf_counter() - t0, 2)
        s, m = row["source"], row["insn"]
        if s is not None:
            row["checker"] = s if s <= replay.LIMIT or m is None or m > replay.LIMIT else m
        rows.append(row)
    return rows


def _ratio(e: int | None, k: int) -> str:
    return "-" if e is None else f"{e / max(k, 1):7.2f}"


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"{'program':44s} {'hook':22s} {'kernel':>8s} {'source':>10s} {'insn':>10s} "
          f"{'src/k':>7s} {'insn/k':>7s}")
    for r in rows:
        if "skip" in r:
            print(f"{r['name']:44s} skipped ({r['skip']})")
            continue
        k, s, m = r["kernel"], r["source"], r["insn"]
        flag = ""
        if m is not None and m < k:
            flag += "  MISS(insn)"
        if s is not None and s < k:
            flag += "  MISS(source)"
        if m is None:
            flag += f"  ({r.get('unsupported') or 'error'})"
        print(f"{r['name'][:44]:44s} {r['hook'][:22]:22s} {k:8d} {s if s is not None else '-':>10} "
              f"{m if m is not None else '-':>10} {_ratio(s, k)} {_ratio(m, k)}{flag}")


def summary(rows: list[dict[str, Any]]) -> None:
    measured = [r for r in rows if "skip" not in r]
    for key in ("source", "insn", "checker"):
        vals = sorted(r[key] / max(r["kernel"], 1) for r in measured if r.get(key) is not None)
        if not vals:
            continue
        q = lambda f, vals=vals: vals[min(int(f * len(vals)), len(vals) - 1)]  # noqa: E731
        misses = [r for r in measured if r.get(key) is not None and r[key] < r["kernel"]]
        refused = sum(1 for r in measured if r.get(key) is not None and r[key] > 1_000_000)
        print(f"{key:6s}: {len(vals)} hooks, estimate/kernel median {q(0.5):.2f}, p95 {q(0.95):.2f}, "
              f"max {vals[-1]:.2f}; misses (estimate < kernel): {len(misses)}; "
              f"over 1M (refused): {refused}")
        for r in misses[:10]:
            print(f"        miss: {r['name']} {r['hook']}: kernel {r['kernel']} {key} {r[key]}")
    raw_summary(measured)
    unsup = [r for r in measured if r.get("insn") is None]
    if unsup:
        print(f"insn model could not run on {len(unsup)} hooks: "
              f"{sorted({r.get('unsupported', 'error') for r in unsup})}")
    accepted = sum(1 for r in rows if r.get("accepted"))
    if accepted:
        print(f"programs whose hooks the source estimate all accepts (not measured): {accepted}")
    skipped = [r for r in rows if "skip" in r and not r.get("accepted")]
    if skipped:
        print(f"skipped programs: {len(skipped)}")


def raw_summary(measured: list[dict[str, Any]]) -> None:
    """The replay's raw count (no MARGIN) against the kernel, and its time per hook."""
    rows = [r for r in measured if r.get("raw") is not None]
    if not rows:
        return
    vals = sorted((r["raw"] if r["complete"] else 1_000_001) / max(r["kernel"], 1) for r in rows)
    q = lambda f: vals[min(int(f * len(vals)), len(vals) - 1)]  # noqa: E731
    below = [r for r in rows if r["complete"] and r["raw"] < r["kernel"]]
    over = sum(1 for r in rows if not r["complete"])
    secs = sorted(r["secs"] for r in rows)
    print(f"raw   : {len(vals)} hooks, replay/kernel median {q(0.5):.2f}, p95 {q(0.95):.2f}, "
          f"max {vals[-1]:.2f}; below the kernel: {len(below)}; over 1M: {over}; "
          f"seconds per hook median {secs[len(secs) // 2]:.2f}, max {secs[-1]:.2f}, "
          f"total {sum(secs):.0f}")
    for r in below:
        print(f"        below: {r['name']} {r['hook']}: kernel {r['kernel']} raw {r['raw']} "
              f"({r['raw'] / r['kernel']:.3f})")


def corpus() -> list[tuple[str, str]]:
    out = [(f"examples/{p.stem}", p.read_text()) for p in sorted((ROOT / "examples").glob("*.py"))]
    walk = (ROOT / "examples" / "tcp_options.py").read_text()
    out.append(("tcp_options_20", walk.replace("MAX_OPTIONS = 10\n", "MAX_OPTIONS = 20\n")))
    out += [(f"shapes/{p.stem}", p.read_text())
            for p in sorted((ROOT / "tests" / "corpus" / "shapes").glob("*.py"))]
    out += [(f"found/{p.stem}", p.read_text())
            for p in sorted((ROOT / "tests" / "property" / "found").glob("budget_*.py"))]
    return out


def _job(item: tuple[str, str, bool]) -> list[dict[str, Any]]:
    return measure(*item)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--generated", type=int, default=0, help="measure N generated programs instead")
    ap.add_argument("--seed", type=int, default=9101)
    ap.add_argument("--statements", type=int, default=40)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--sources", help="a JSON list of program sources to measure instead")
    ap.add_argument("--refused", action="store_true",
                    help="only the hooks the source estimate refuses (over 1,000,000)")
    ap.add_argument("--quiet", action="store_true", help="summary and misses only")
    a = ap.parse_args()
    if a.sources:
        stem = Path(a.sources).stem
        named = [(f"{stem}_{i:04d}", src) for i, src in enumerate(json.loads(Path(a.sources).read_text()))]
    elif a.generated:
        from etran.testing.progen import sample_programs
        named = [(f"gen{a.seed}_{i:04d}", p.source)
                 for i, p in enumerate(sample_programs(a.generated, a.statements, seed=a.seed))]
    else:
        named = corpus()
    items = [(n, s, a.refused) for n, s in named]
    t0 = time.time()
    rows: list[dict[str, Any]] = []
    if a.jobs > 1:
        with multiprocessing.get_context("spawn").Pool(a.jobs, maxtasksperchild=50) as pool:
            for part in pool.imap(_job, items):
                rows += part
    else:
        for item in items:
            rows += _job(item)
    if not a.quiet:
        print_rows(rows)
    else:
        print_rows([r for r in rows if "skip" not in r and (
            (r.get("insn") is not None and r["insn"] < r["kernel"]) or r.get("insn") is None)])
    print(f"\n{len(items)} programs in {time.time() - t0:.0f}s")
    summary(rows)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

"""Differential fuzzing: generated inputs, the compiled program in the kernel, the interpreter, compared.

`fuzz_hook` drives hypothesis over `etran.testing.strategies.run_inputs` for
one hook of a loaded program; every case runs in the kernel
(BPF_PROG_TEST_RUN, through `etran.differential.harness.KernelHarness`) and in the
reference interpreter, and everything observable is compared. On a mismatch
hypothesis shrinks the input; the smallest failing case becomes a
`Counterexample`, which can be rendered for a person and saved as a
regression file (source and input) that `replay` runs again.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import seed as hyp_seed
from hypothesis import strategies as st

from etran.backend.emit import CompiledObject
from etran.differential.harness import Difference, KernelHarness, compare
from etran.interp.interpreter import Interpreter
from etran.interp.state import MapStore, RunInput, RunResult, frame_input
from etran.ir import tir
from etran.testing.strategies import ByteSource, fast_input_batches, store_from_bytes

BATCH = 4   # inputs per hypothesis example (see strategies.fast_input_batches)


class _Mismatch(Exception):
    pass


@dataclass
class Counterexample:
    program: tir.Program
    hook: str
    input: RunInput
    timer_key: bytes | None
    kernel: RunResult
    interpreter: RunResult
    differences: list[Difference]


@dataclass
class FuzzReport:
    hook: str
    cases: int = 0
    seconds: float = 0.0
    counterexample: Counterexample | None = None

    @property
    def mismatches(self) -> int:
        return 0 if self.counterexample is None else 1

    @property
    def rate(self) -> float:
        return self.cases / self.seconds if self.seconds else 0.0


def timer_map(program: tir.Program, fn: tir.Function) -> Any:
    """The map whose values hold the Timer that @timer handler `fn` fires for."""
    assert fn.timer_field is not None
    st_, _ = fn.timer_field
    return next(m for m in program.maps if m.value is st_)


def fuzz_hook(runner: KernelHarness, hook: str, examples: int = 1000, seed: int | None = None,
              progress: Callable[[FuzzReport], None] | None = None,
              inputs: st.SearchStrategy[RunInput] | None = None) -> FuzzReport:
    """Compare kernel and interpreter on `examples` generated inputs for one hook."""
    program = runner.program
    fn = program.hook(hook)
    interp = Interpreter(program)
    report = FuzzReport(hook)
    last: list[Counterexample] = []
    if fn.hook == "timer":
        tmap = timer_map(program, fn)
        strategy: st.SearchStrategy[Any] = st.tuples(
            st.binary(max_size=600).map(
                lambda b: store_from_bytes(ByteSource(b), program, runner.ncpu)), st.data())
    else:
        strategy = inputs if inputs is not None else fast_input_batches(program, runner.ncpu, BATCH)
    start = time.perf_counter()

    per_example = 1 if fn.hook == "timer" or inputs is not None else BATCH
    @settings(max_examples=max(1, -(-examples // per_example)), deadline=None, database=None, derandomize=seed is None,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
              phases=[Phase.generate, Phase.shrink])
    @given(strategy)
    def check(drawn: Any) -> None:
        key: bytes | None = None
        if fn.hook == "timer":
            store, data = drawn
            keys = list(store[tmap.name].entries)
            assume(keys)
            key = data.draw(st.sampled_from(keys))
            inp = frame_input(bytes(64), maps=store)
            k = runner.run_timer(hook, key, inp)
            i = interp.run_timer(hook, key, inp)
            run_one(inp, key, k, i)
            return
        for inp in drawn if isinstance(drawn, list) else [drawn]:
            if report.cases >= examples:
                return
            run_one(inp, None, runner.run(hook, inp), interp.run(hook, inp))

    def run_one(inp: RunInput, key: bytes | None, k: RunResult, i: RunResult) -> None:
        report.cases += 1
        if progress is not None and report.cases % 200 == 0:
            report.seconds = time.perf_counter() - start
            progress(report)
        diffs = compare(k, i)
        if diffs:
            last[:] = [Counterexample(program, hook, inp, key, k, i, diffs)]
            raise _Mismatch()

    if seed is not None:
        check = hyp_seed(seed)(check)
    try:
        check()
    except _Mismatch:
        report.counterexample = last[0] if last else None
    report.seconds = time.perf_counter() - start
    return report


# ---------------------------------------------------------------- showing and saving
def input_as_json(program: tir.Program, inp: RunInput, timer_key: bytes | None) -> dict[str, Any]:
    maps: dict[str, Any] = {}
    if inp.maps is not None:
        for name, st_ in inp.maps.maps.items():
            entries = [[k.hex(), [bytes(x).hex() for x in v] if isinstance(v, list)
                        else (v if isinstance(v, int) else bytes(v).hex())]
                       for k, v in st_.entries.items()]
            if entries or st_.queue:
                maps[name] = {"entries": entries, "queue": [q.hex() for q in st_.queue]}
    return {"packet": inp.packet.hex(), "now_ns": inp.now_ns, "cpu": inp.cpu,
            "random_u32": inp.random_u32, "rx_queue": inp.rx_queue, "maps": maps,
            "ncpu": inp.maps.ncpu if inp.maps is not None else 1,
            "timer_key": timer_key.hex() if timer_key is not None else None}


def input_from_json(program: tir.Program, data: dict[str, Any], ncpu: int) -> tuple[RunInput, bytes | None]:
    store = MapStore(program, ncpu)
    for name, contents in data.get("maps", {}).items():
        for k, v in contents.get("entries", []):
            if isinstance(v, list):
                vals = [bytes.fromhex(x) for x in v]
                vals = (vals + [vals[-1]] * ncpu)[:ncpu] if vals else vals
                store.set_raw(name, bytes.fromhex(k), vals)
            elif isinstance(v, int):
                store.set_raw(name, bytes.fromhex(k), v)
            else:
                store.set_raw(name, bytes.fromhex(k), bytes.fromhex(v))
        for q in contents.get("queue", []):
            store.push_raw(name, bytes.fromhex(q))
    inp = frame_input(bytes.fromhex(data["packet"]), maps=store, now_ns=data.get("now_ns", 0),
                      cpu=data.get("cpu", 0), random_u32=data.get("random_u32", 0),
                      rx_queue=data.get("rx_queue", 0))
    key = data.get("timer_key")
    return inp, bytes.fromhex(key) if key else None


def save_counterexample(cx: Counterexample, directory: Path) -> Path:
    """Write the source and the input of a counterexample; returns the file written."""
    record: dict[str, Any] = {
        "filename": Path(cx.program.filename).name,
        "hook": cx.hook,
        "source": cx.program.source,
        "input": input_as_json(cx.program, cx.input, cx.timer_key),
        "differences": [str(d) for d in cx.differences],
    }
    text = json.dumps(record, indent=1, sort_keys=True)
    digest = hashlib.sha256((record["source"] + json.dumps(record["input"])).encode()).hexdigest()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{Path(record['filename']).stem}-{cx.hook}-{digest[:10]}.json"
    path.write_text(text + "\n")
    return path


def replay(path: Path) -> list[Difference]:
    """Run a saved counterexample again: the differences the kernel and interpreter show now."""
    from etran.pipeline import check_source, compile_program
    record = json.loads(path.read_text())
    program = check_source(record["source"], record["filename"])
    obj = compile_program(program, observe=True)
    with KernelHarness(obj) as runner:
        inp, key = input_from_json(program, record["input"], runner.ncpu)
        interp = Interpreter(program)
        if key is not None:
            return compare(runner.run_timer(record["hook"], key, inp),
                           interp.run_timer(record["hook"], key, inp))
        return compare(runner.run(record["hook"], inp), interp.run(record["hook"], inp))


def describe(cx: Counterexample, obj: CompiledObject | None = None) -> str:
    """The counterexample for a person: differences, input, and the hook's BPF with DSL lines."""
    from etran.cli.show import show_side_by_side
    lines = [f"MISMATCH in `{cx.hook}` ({Path(cx.program.filename).name})"]
    lines.append("input:")
    data = input_as_json(cx.program, cx.input, cx.timer_key)
    lines.append(f"  packet ({len(cx.input.packet)} bytes): {data['packet']}")
    lines.append(f"  now_ns={cx.input.now_ns} cpu={cx.input.cpu} random_u32={cx.input.random_u32}")
    if cx.timer_key is not None:
        lines.append(f"  timer fired for key {cx.timer_key.hex()}")
    for name, contents in data["maps"].items():
        lines.append(f"  map {name}: {json.dumps(contents)}")
    before = cx.input.maps or MapStore(cx.program)
    timer = (cx.hook, cx.timer_key) if cx.timer_key is not None else None
    lines.append(show_side_by_side(cx.program, cx.input.packet, before, cx.kernel,
                                   cx.interpreter, cx.differences, timer))
    if obj is not None:
        from etran.backend.disasm import disassemble, render
        from etran.backend.objfile import read_object
        name = cx.hook if cx.timer_key is None else cx.hook + "__fire"
        try:
            lines.append(render(disassemble(read_object(obj.elf), name)))
        except KeyError:
            pass
    return "\n".join(lines)

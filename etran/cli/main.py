"""The `etran` command line.

    etran check FILE                 diagnostics, or each hook's budget estimate
    etran build FILE -o OUT.o        a standard BPF ELF object
    etran disasm FILE [--hook H]     BPF instructions with the DSL source interleaved
    etran verify FILE [--log]        load into the kernel verifier: verdict and statistics
                                     (check, build, disasm, verify, run, fuzz, up:
                                     --kernel-decides loads a program whose verifier-work
                                     estimate is over the limit; `check --kernel-decides`
                                     also loads it and shows the kernel's verdict)
    etran run FILE HOOK --packet HEX [--maps JSON]
    etran run FILE HANDLER --key KEY [--maps JSON]
                                     the kernel's and the interpreter's results side by side
                                     (a @timer handler fired for the map entry with KEY)
    etran fuzz FILE [--hook H] [--examples N] [--seed S]
                                     kernel vs interpreter on generated inputs
    etran fuzz --programs N          ... on generated programs (soundness, budget too)
    etran demo                       check, build, verify and run the DCTCP example

Exit codes: 0 success, 1 a problem in the user's program or input (including a
kernel/interpreter mismatch), 2 a usage error or a missing capability. Bad
input never produces a traceback; set ETRAN_DEBUG=1 to see one for a bug.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_PROGRAM, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A wrong argument or an unreadable file: exit code 2."""


class InputError(Exception):
    """A problem in the user's input data (packet, maps): exit code 1."""


def _read_source(path: str) -> tuple[str, str]:
    p = Path(path)
    try:
        return p.read_text(), str(p)
    except FileNotFoundError:
        raise UsageError(f"cannot read {path}: no such file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e.strerror if hasattr(e, 'strerror') and e.strerror else e}") from None


def _check(path: str) -> Any:
    global _PROGRAM
    from etran.dsl.diagnostics import DiagnosticSink
    from etran.pipeline import check_source
    text, name = _read_source(path)
    sink = DiagnosticSink()
    program = check_source(text, name, sink=sink, budget_advisory=_KERNEL_DECIDES)
    _warn(sink)
    _PROGRAM = program  # for the checker's estimates next to a verifier rejection
    return program


def _warn(sink: Any) -> None:
    """The checker's warnings (a budget refusal made advisory by --kernel-decides)."""
    from etran.dsl.diagnostics import render
    warnings = [d for d in sink.sorted() if d.severity == "warning"]
    if warnings:
        print(render(warnings) + "\n  (--kernel-decides: loading anyway; the kernel "
              "verifier decides)", file=sys.stderr)


# ---------------------------------------------------------------- check / build
def cmd_check(args: argparse.Namespace) -> int:
    if args.kernel_decides and args.source_only:
        raise UsageError("--kernel-decides loads the compiled hooks and --source-only does "
                         "not compile them: give one or the other")
    if args.kernel_decides:
        _kernel()  # only the kernel can decide: without one, say what is missing first
    program = _check(args.file)
    from etran.analysis.budget import MAX_PROCESSED
    verdicts: list[str] = []
    compiled: dict[str, int] = {}       # each compiled hook's instructions (insn_cnt)
    if program.hooks and not args.source_only:
        # The source-level estimate is the check's sound first pass; compiled, each hook's
        # instructions are replayed as the verifier walks them, which tightens the estimate
        # shown to within 1.5x of the kernel's count on most hooks (docs/verification.md).
        # The compile also finds what only the compiled program shows (its stack frame).
        from etran.pipeline import compile_program, refine_budgets
        _SOURCES.update(program.sources)
        obj = compile_program(program)
        refine_budgets(obj)
        # once replayed, the estimate shown is the one the check decides by
        from etran.analysis.budget import check_refined
        from etran.dsl.diagnostics import DiagnosticSink
        sink = DiagnosticSink()
        check_refined(program, sink, advisory=_KERNEL_DECIDES)
        _warn(sink)
        sink.raise_if_errors()
        compiled = {p.name: p.insns for p in obj.programs}
        if args.kernel_decides:
            # Load every hook into the kernel verifier, for its verdict next to the estimate.
            from etran.cli.verifier_report import verdict_lines
            from etran.runtime.loader import load_object
            with load_object(obj.elf, name=program.name[:15] or "etran") as loaded:
                verdicts = verdict_lines(program, loaded)
    print(f"{args.file}: ok")
    for h in program.hooks:
        est = program.budgets.get(h.name)
        kind = f"@{h.hook}" if h.hook != "timer" else f"@timer({h.timer_field[0].name}."\
            f"{h.timer_field[1].name})"
        if est is None:
            print(f"  {kind:<24} {h.name}")
            continue
        how = " (replayed over the compiled instructions)" if est.replayed else ""
        insns = f"{compiled[h.name]:,}" if h.name in compiled else f"~{est.insns:,}"
        print(f"  {kind:<24} {h.name}: {insns} instructions, verifier ~{est.processed:,} "
              f"of {MAX_PROCESSED:,} processed{how}, stack {est.stack} of 512 bytes")
    for line in verdicts:
        print(line)
    for m in program.maps:
        if m.kind == "RingBuf":  # its size is in bytes: records of any number fill it
            print(f"  map {m.name}: RingBuf, {m.max_entries} bytes, records of {m.value_size} B")
            continue
        print(f"  map {m.name}: {m.kind}, {m.max_entries} entries"
              + (f", key {m.key_size} B" if m.key_size else "")
              + (f", value {m.value_size} B" if m.value_size else ""))
    return EXIT_OK


def _compile(path: str, observe: bool = False) -> Any:
    from etran.pipeline import compile_program
    program = _check(path)
    if not program.hooks:
        # A module without hooks is fine to import (`etran check` accepts it), but there
        # is nothing here to build, load or run.
        raise InputError(f"{path} defines no hook: nothing to compile; decorate a function "
                         "with @xdp, @egress, @gen or @timer(Struct.field)")
    _SOURCES.update(program.sources)  # to map a verifier rejection back to DSL lines
    return compile_program(program, observe=observe)


def cmd_build(args: argparse.Namespace) -> int:
    obj = _compile(args.file)
    out = Path(args.output or Path(args.file).with_suffix(".o").name)
    try:
        out.write_bytes(obj.elf)
    except OSError as e:
        raise UsageError(f"cannot write {out}: {e.strerror}") from None
    names = ", ".join(f"{p.name} (@{p.hook})" for p in obj.programs)
    print(f"wrote {out}: {len(obj.elf)} bytes; programs: {names or 'none'}; "
          f"maps: {', '.join(m.name for m in obj.maps) or 'none'}")
    return EXIT_OK


def cmd_disasm(args: argparse.Namespace) -> int:
    from etran.backend.disasm import disassemble, render
    from etran.backend.objfile import read_object
    obj = _compile(args.file)
    names = [p.name for p in obj.programs]
    if args.hook is not None and args.hook not in names:
        raise UsageError(f"no hook named {args.hook!r} in {args.file}; hooks: {', '.join(names)}")
    listings = disassemble(read_object(obj.elf), args.hook)
    print(render(listings))
    print()
    for lst in listings:
        nops = lst.nops
        run = f", {lst.instruction_count - nops} once loaded ({nops} nops removed)" if nops else ""
        print(f"{lst.name}: {lst.instruction_count} instructions{run}")
    return EXIT_OK


# ---------------------------------------------------------------- verify
def _kernel() -> None:
    from etran.runtime.loader import check_kernel_support
    check_kernel_support()


def cmd_verify(args: argparse.Namespace) -> int:
    from etran.cli.verifier_report import verdict_lines
    from etran.pipeline import refine_budgets
    from etran.runtime.loader import load_object
    obj = _compile(args.file)
    _kernel()
    refine_budgets(obj)
    with load_object(obj.elf, name=obj.program.name[:15] or "etran") as loaded:
        print(f"{args.file}: accepted by the kernel verifier")
        for hook, line in zip(obj.program.hooks, verdict_lines(obj.program, loaded, details=True)):
            print(line)
            prog = loaded.programs.get(hook.name)
            if args.log and prog is not None:
                print("  verifier log:")
                for log_line in prog.verifier_log.rstrip().splitlines():
                    print("    " + log_line)
    return EXIT_OK


# ---------------------------------------------------------------- run
def _parse_packet(text: str) -> bytes:
    cleaned = "".join(text.split()).replace(":", "")
    if cleaned.startswith(("0x", "0X")):
        cleaned = cleaned[2:]
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise InputError(f"--packet: {text[:40]!r} is not hex bytes (e.g. 0a0b0c...)") from None


def _parse_maps(program: Any, text: str | None, ncpu: int) -> Any:
    import json

    from etran.interp.state import MapStore
    from etran.ir.codec import CodecError
    store = MapStore(program, ncpu)
    if not text:
        return store
    try:
        data = json.loads(Path(text[1:]).read_text() if text.startswith("@") else text)
    except FileNotFoundError:
        raise UsageError(f"--maps: cannot read {text[1:]}") from None
    except json.JSONDecodeError as e:
        raise InputError(f"--maps: invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(data, dict):
        raise InputError("--maps: expected an object mapping map names to contents")
    names = {m.name: m for m in program.maps}
    try:
        for name, contents in data.items():
            m = names.get(name)
            if m is None:
                raise InputError(f"--maps: no map named {name!r}; maps: {', '.join(names)}")
            if m.kind == "Queue":
                from etran.ir import codec
                for v in contents:
                    store.push_raw(name, codec.encode(m.value, v, f"{name} value"))
                continue
            items = contents.items() if isinstance(contents, dict) else \
                [(e.get("key"), e.get("value")) for e in contents]
            for k, v in items:
                if isinstance(k, str) and m.key is not None and not hasattr(m.key, "fields"):
                    k = int(k, 0)
                if m.kind == "DevMap":
                    v = _interface(m, k, v)
                store.set(name, k, v)
    except CodecError as e:
        raise InputError(f"--maps: {e}") from None
    except (AttributeError, TypeError):
        raise InputError("--maps: each map is a list of {\"key\": ..., \"value\": ...} or an "
                         "object {key: value}") from None
    return store


def _interface(m: Any, key: Any, value: Any) -> int:
    """A DevMap slot's interface, given by name or index."""
    import json
    import socket
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            pass
        try:
            return socket.if_nametoindex(value)
        except OSError:
            raise InputError(f"--maps: {m.name}[{key}]: no interface named {value!r} in this "
                             "network namespace; give an interface's name or index (`ip "
                             "link` lists them)") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"--maps: {m.name}[{key}]: a DevMap slot holds an interface, given "
                         f"by name or index (\"lo\" or 1), not {json.dumps(value)}")
    return value


# A @timer handler runs without a packet; its `<handler>__fire` program is an XDP program,
# so a test run still hands it a frame, which nothing reads.
_FIRE_FRAME = bytes(64)


def _key_example(m: Any) -> str:
    if m.key is not None and hasattr(m.key, "fields"):
        return "'{" + ", ".join(f'"{f.name}": ...' for f in m.key.fields) + "}'"
    return "0"


def _parse_key(program: Any, handler: str, text: str | None, store: Any) -> bytes:
    """The raw key of the entry a @timer handler fires for: JSON with the key's own field
    names for a struct key, an integer for an integer key."""
    import json

    from etran.cli.show import timer_map
    from etran.ir import codec
    m = timer_map(program, handler)
    if text is None:
        raise UsageError(f"`{handler}` is a @timer handler: name the entry of map `{m.name}` "
                         f"it fires for with --key (e.g. --key {_key_example(m)})")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        if text.lstrip().startswith(("{", "[", '"')):
            raise InputError(f"--key: invalid JSON: {e.msg} at column {e.colno} (e.g. --key "
                             f"{_key_example(m)})") from None
        value = text  # 0x10, 10.0.0.1: the codec reads them
    try:
        key = codec.encode(m.key, value, f"{m.name} key")
    except codec.CodecError as e:
        raise InputError(f"--key: {e} (e.g. --key {_key_example(m)})") from None
    entries = store[m.name]
    if m.is_array:
        slot = int.from_bytes(key, "little")
        if slot >= m.max_entries:
            raise InputError(f"--key: map `{m.name}` has slots 0 to {m.max_entries - 1}, not "
                             f"{slot}")
        entries.array_slot(slot)  # array slots always exist
    elif key not in entries.entries:
        shown = codec.format_value(codec.decode(m.key, key, pretty=True), compact=True)
        raise InputError(f"--key: map `{m.name}` has no entry {shown}; the timer fires for an "
                         "entry, so give it in --maps")
    return key


def cmd_run(args: argparse.Namespace) -> int:
    from etran.cli.show import show_side_by_side
    from etran.cli.verifier_report import verdict_lines
    from etran.differential.harness import KernelHarness, RunError, compare
    from etran.interp.interpreter import Interpreter
    from etran.interp.state import frame_input
    from etran.pipeline import refine_budgets
    from etran.runtime.loader import possible_cpus
    packet = _parse_packet(args.packet) if args.packet is not None else None
    obj = _compile(args.file, observe=True)
    refine_budgets(obj)     # the estimates shown: refined when this build is the plain one
    hooks = [h.name for h in obj.program.hooks]
    if args.hook not in hooks:
        raise UsageError(f"no hook named {args.hook!r} in {args.file}; hooks: {', '.join(hooks) or 'none'}")
    fn = obj.program.hook(args.hook)
    timer = fn.hook == "timer"
    if timer and packet is not None:
        raise UsageError(f"`{args.hook}` is a @timer handler, which runs without a packet: drop "
                         "--packet and name the map entry it fires for with --key")
    if not timer and args.key is not None:
        raise UsageError(f"--key names the map entry a @timer handler fires for; `{args.hook}` "
                         f"is a packet hook (@{fn.hook}): give it a frame with --packet HEX")
    if not timer and packet is None:
        raise UsageError(f"`{args.hook}` is a packet hook (@{fn.hook}): give it a frame with "
                         "--packet HEX")
    _kernel()
    ncpu = possible_cpus()
    if not 0 <= args.cpu < min(ncpu, os.cpu_count() or 1):
        raise UsageError(f"--cpu {args.cpu}: this machine has CPUs 0 to {(os.cpu_count() or 1) - 1}")
    store = _parse_maps(obj.program, args.maps, ncpu)
    key = _parse_key(obj.program, args.hook, args.key, store) if timer else b""
    frame = _FIRE_FRAME if packet is None else packet
    inp = frame_input(frame, maps=store, now_ns=args.now, cpu=args.cpu, rx_queue=0)
    try:
        with KernelHarness(obj) as runner:
            verdicts = verdict_lines(obj.program, runner.loaded)
            kernel = runner.run_timer(args.hook, key, inp) if timer else runner.run(args.hook, inp)
    except RunError as e:
        raise InputError(str(e)) from None
    interpreter = Interpreter(obj.program)
    interp = interpreter.run_timer(args.hook, key, inp) if timer else interpreter.run(args.hook, inp)
    diffs = compare(kernel, interp)
    uses_clock = any(k == "helper" and n in ("now_ns()", "random_u32()")
                     for k, n, _ in fn.effects)
    print("\n".join(verdicts))
    print(show_side_by_side(obj.program, frame, store, kernel, interp, diffs,
                            (args.hook, key) if timer else None))
    if diffs and uses_clock:
        print("note: the hook reads the clock or random numbers, which the interpreter takes "
              "as inputs (--now); differences there are expected")
    return EXIT_PROGRAM if diffs else EXIT_OK


def cmd_fuzz(args: argparse.Namespace) -> int:
    if args.programs is not None:
        from etran.differential.programs import fuzz_programs_command
        return fuzz_programs_command(args)
    if not args.file:
        raise UsageError("fuzz needs a FILE, or --programs N to generate programs")
    if args.examples < 1:
        raise UsageError("--examples must be at least 1")
    from etran.cli.verifier_report import verdict_lines
    from etran.differential.harness import KernelHarness
    from etran.differential.inputs import describe, fuzz_hook, save_counterexample
    from etran.differential.sweep import sweep_hook
    from etran.pipeline import refine_budgets
    obj = _compile(args.file, observe=True)
    refine_budgets(obj)     # the estimates shown: refined when this build is the plain one
    hooks = [h.name for h in obj.program.hooks]
    if args.hook is not None and args.hook not in hooks:
        raise UsageError(f"no hook named {args.hook!r} in {args.file}; hooks: {', '.join(hooks)}")
    _kernel()
    chosen = [args.hook] if args.hook else hooks
    tty = sys.stderr.isatty()

    def progress(r: Any) -> None:
        line = f"  {r.hook}: {r.cases}/{args.examples} cases, {r.rate:,.0f} cases/s"
        print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    failed = False
    with KernelHarness(obj) as runner:
        print("\n".join(verdict_lines(obj.program, runner.loaded)), flush=True)
        for hook in chosen:
            fuzz = sweep_hook if args.sweep else fuzz_hook
            report = fuzz(runner, hook, args.examples, args.seed, progress)
            if tty:
                print("\r" + " " * 70 + "\r", end="", file=sys.stderr)
            print(f"{hook}: {report.cases} cases, {report.mismatches} mismatches, "
                  f"{report.rate:,.0f} cases/s")
            if report.counterexample is not None:
                failed = True
                print(describe(report.counterexample, _compile(args.file, observe=True)))
                saved = save_counterexample(report.counterexample, Path(args.save))
                print(f"saved the counterexample (source and input) to {saved}")
                break
    return EXIT_PROGRAM if failed else EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from etran.cli.demo import demo
    return demo()


# ---------------------------------------------------------------- main
def _add_kernel_decides(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kernel-decides", action="store_true",
                   help="when the checker's (pessimistic) estimate of verifier work is over "
                   "the kernel's limit, warn and load anyway: the kernel verifier decides")


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, with the terminal's width found as `shutil.get_terminal_size`
    finds it but without importing shutil (and with it bz2 and lzma: 1.6 ms of `check`)."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None, **kwargs: Any) -> None:
        if width is None:
            width = _terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width, **kwargs)


def _terminal_columns() -> int:
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        size = os.get_terminal_size(sys.__stdout__.fileno())  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80
    return size.columns or 80


def _add_check(sub: Any) -> None:
    c = sub.add_parser("check", help="check a transport and report each hook's budget",
                       formatter_class=_HelpFormatter)
    c.add_argument("file")
    c.add_argument("--kernel-decides", action="store_true",
                   help="when the checker's (pessimistic) estimate of verifier work is over "
                   "the kernel's limit, warn instead; then load every hook into the kernel "
                   "verifier and show its verdict next to the estimate (needs a kernel)")
    c.add_argument("--source-only", action="store_true",
                   help="check the source alone: skip compiling and replaying the compiled "
                   "hooks, and show the source-level estimate (faster, looser)")
    c.set_defaults(func=cmd_check)


def _add_build(sub: Any) -> None:
    b = sub.add_parser("build", help="compile a transport to a BPF ELF object",
                       formatter_class=_HelpFormatter)
    b.add_argument("file")
    b.add_argument("-o", "--output", help="output object (default: FILE's stem + .o)")
    _add_kernel_decides(b)
    b.set_defaults(func=cmd_build)


def _add_disasm(sub: Any) -> None:
    d = sub.add_parser("disasm", help="show BPF instructions with DSL source lines",
                       formatter_class=_HelpFormatter)
    d.add_argument("file")
    d.add_argument("--hook", help="only this hook")
    _add_kernel_decides(d)
    d.set_defaults(func=cmd_disasm)


def _add_verify(sub: Any) -> None:
    v = sub.add_parser("verify", help="load into the kernel verifier and report statistics",
                       formatter_class=_HelpFormatter)
    v.add_argument("file")
    v.add_argument("--log", action="store_true", help="print the full verifier log")
    _add_kernel_decides(v)
    v.set_defaults(func=cmd_verify)


def _add_run(sub: Any) -> None:
    r = sub.add_parser("run", help="run a hook in the kernel and in the interpreter, compare",
                       formatter_class=_HelpFormatter)
    r.add_argument("file")
    r.add_argument("hook", help="a packet hook, or a @timer handler")
    r.add_argument("--packet", help="the frame, as hex bytes (packet hooks)")
    r.add_argument("--key", help="the key of the map entry a @timer handler fires for: JSON "
                   "with the key's field names, or an integer")
    r.add_argument("--maps", help="map contents as JSON, or @file.json")
    r.add_argument("--now", type=int, default=0, help="the clock for the interpreter (ns)")
    r.add_argument("--cpu", type=int, default=0, help="run on this CPU")
    _add_kernel_decides(r)
    r.set_defaults(func=cmd_run)


def _add_fuzz(sub: Any) -> None:
    fz = sub.add_parser("fuzz", help="compare kernel and interpreter on generated inputs, "
                        "or on generated programs with --programs N", formatter_class=_HelpFormatter)
    fz.add_argument("file", nargs="?")
    fz.add_argument("--hook", help="only this hook (default: every hook, timers included)")
    fz.add_argument("--examples", type=int, default=1000, help="inputs per hook (default 1000)")
    fz.add_argument("--seed", type=int, help="a seed, for a reproducible run")
    fz.add_argument("--sweep", action="store_true",
                    help="draw from a seeded random stream instead of hypothesis: inputs at "
                    "about twice the cases per second (a mismatch is shrunk by etran's byte "
                    "shrinker); with --programs, the long campaigns' programs (larger, "
                    "independent, not shrunk)")
    fz.add_argument("--programs", type=int, help="generate this many programs instead of a FILE")
    fz.add_argument("--inputs", type=int, default=3, help="inputs per generated program")
    fz.add_argument("--save", default=".etran/counterexamples",
                    help="where counterexamples are saved (default .etran/counterexamples)")
    _add_kernel_decides(fz)
    fz.set_defaults(func=cmd_fuzz)


def _add_demo(sub: Any) -> None:
    dm = sub.add_parser("demo", help="check, build, verify and run the DCTCP example",
                        formatter_class=_HelpFormatter)
    dm.set_defaults(func=cmd_demo)


# The compiler's own commands, in the order `--help` lists them. They run without the
# runtime's (netns, nc, rpc, trace): a parser for one of them has only that one, and does
# not import the others' modules (bench/compile.py times `check` and `build` as processes).
_OWN_COMMANDS: dict[str, Callable[[Any], None]] = {
    "check": _add_check, "build": _add_build, "disasm": _add_disasm, "verify": _add_verify,
    "run": _add_run, "fuzz": _add_fuzz, "demo": _add_demo,
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser; given the arguments, only as much of it as they need: for
    one of `_OWN_COMMANDS`, that command alone (its usage errors and help are the same, and
    `--help` or an unknown command lists every command)."""
    p = argparse.ArgumentParser(prog="etran", description="Kernel transports in restricted "
                                "Python, compiled to eBPF and checked against an interpreter.",
                                formatter_class=_HelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    command = next((a for a in argv if not a.startswith("-")), None) if argv is not None else None
    if command in _OWN_COMMANDS:
        _OWN_COMMANDS[command](sub)
        return p
    for add in _OWN_COMMANDS.values():
        add(sub)
    try:
        from etran.cli.runtime_commands import add_runtime_commands
    except ImportError:
        pass
    else:
        add_runtime_commands(sub)
        from etran.cli.hostd import add_hostd
        from etran.cli.nc import add_nc
        from etran.cli.rpc import add_rpc
        from etran.cli.runtime_commands import _guarded
        from etran.cli.trace import add_trace
        add_nc(sub, _guarded)
        add_hostd(sub, _guarded)
        add_rpc(sub, _guarded)
        add_trace(sub, _guarded)
    return p


def _errors() -> list[tuple[type[BaseException], Callable[[Any], tuple[str, int]]]]:
    from etran.dsl.diagnostics import DiagnosticError
    from etran.ir.codec import CodecError
    from etran.runtime.errors import BpfError, EtranRuntimeError, NotSupported, VerifierError

    def verifier(e: VerifierError) -> tuple[str, int]:
        from etran.cli.verifier_report import parse_rejection, rejection_line, render_rejection
        r = parse_rejection(e.program, e.log, e.error_line)
        return render_rejection(r, _SOURCES, e.log if _WANT_LOG else None,
                                rejection_line(_PROGRAM, e.program, e.log)), EXIT_PROGRAM

    return [
        (DiagnosticError, lambda e: (str(e), EXIT_PROGRAM)),
        (UsageError, lambda e: (f"etran: {e}", EXIT_USAGE)),
        (InputError, lambda e: (f"etran: {e}", EXIT_PROGRAM)),
        (CodecError, lambda e: (f"etran: {e}", EXIT_PROGRAM)),
        (VerifierError, verifier),
        (NotSupported, lambda e: (f"etran: {e}", EXIT_USAGE)),
        (BpfError, lambda e: (f"etran: {e}", EXIT_USAGE)),
        (EtranRuntimeError, lambda e: (f"etran: {e}", EXIT_USAGE)),
    ]


_SOURCES: dict[str, str] = {}
_PROGRAM: Any = None
_WANT_LOG = False
_KERNEL_DECIDES = False


def main(argv: Sequence[str] | None = None) -> int:
    global _WANT_LOG, _KERNEL_DECIDES, _PROGRAM
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse printed the usage error
        return int(e.code or 0) and EXIT_USAGE
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    _WANT_LOG = bool(getattr(args, "log", False))
    _KERNEL_DECIDES = bool(getattr(args, "kernel_decides", False))
    _PROGRAM = None
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("etran: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`etran disasm f.py | head`): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except BaseException as e:
        for cls, handle in _errors():
            if isinstance(e, cls):
                text, code = handle(e)
                print(text, file=sys.stderr)
                return code
        if os.environ.get("ETRAN_DEBUG"):
            import traceback
            traceback.print_exc()
        else:
            print(f"etran: internal error: {type(e).__name__}: {e}\n"
                  "  this is a bug in etran; rerun with ETRAN_DEBUG=1 for the traceback and "
                  "report it", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())

"""etran against clang: the same XDP programs written in C and in etran's language.

Each pair in bench/c/ is NAME.c, written the way an eBPF developer writes C (libbpf's
bpf_helpers.h, BTF-defined maps in SEC(".maps"), SEC("xdp")), and NAME.py, its twin in
etran's language, statement for statement. The C is compiled here, at benchmark time, with
`clang -O2 -g -target bpf -mcpu=v3 -c`, the twin by etran; both objects are loaded by the same
loader (etran.runtime.loader: libbpf, then the kernel's verifier). For each pair, one run
reports, with the ratio etran/clang and the median ratio over the suite:

* insns: instructions loaded, after the verifier's rewrites (`xlated_prog_len / 8`);
* JIT bytes: the machine code the kernel's JIT made of them (`jited_prog_len`);
* processed: the instructions the verifier walked to accept the program;
* ns/packet: BPF_PROG_TEST_RUN with `--repeat` repetitions on one frame that takes the
  program's main path (CASES says which), from the same map contents. The two programs
  take turns for `--rounds` rounds on one CPU; medians. The time is the kernel's run-time
  statistics (BPF_ENABLE_STATS: sched_clock() read around every run of a program; their
  sum over the count). The test run's own figure is a whole number of nanoseconds, too
  coarse when two programs differ by a few, and includes its loop (it is in the JSON as
  `test_run_ns`); the call's wall-clock time is mostly two RCU grace periods (the XDP
  dispatcher is updated before and after the repetitions).
* net ratio: both times include the clock reads and the dispatcher's call, so a program
  that does little has a ratio near 1.0 whatever its code. A program that only returns
  XDP_PASS takes its turns with each pair; the net ratio is of the times above its. It is
  noisy for programs within a few ns of it (n/a when the C program's time is not above it).

Before the measurements each pair runs once from the same maps on the same frame, and the
verdict, the frame that comes out and the maps afterwards (time stamps aside) must be the
same for both: the programs compared do the same work.

Why `-mcpu=v3`: etran emits BPF v3 (32-bit subregisters and jumps); clang before 19 emits
v1 by default, which would cost the C instructions for a reason that is the ISA's, not the
compiler's. `--mcpu generic` measures clang's default instead.

Targets (docs/performance.md has the last run): loaded instructions at most 1.0x clang's
as a median over the suite and at most 1.2x for every program (met: 0.96, at most 1.04);
ns/packet at most 1.0x clang's median (met: 0.99-1.00 from run to run).

Needs clang and libbpf's headers: installed with apt-get when missing (`--clang` picks a
compiler, e.g. clang-19). Run as root:
`.venv/bin/python bench/vs_clang.py [--rounds N] [--repeat N] [--only NAME,...] [--json]`.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llvmlite.binding as llvm

ROOT = Path(__file__).resolve().parents[1]
C_DIR = ROOT / "bench" / "c"
sys.path.insert(0, str(ROOT))

from etran.abi import XDP_ACTION_NAMES, XDP_DROP, XDP_PASS, XDP_TX  # noqa: E402
from etran.ir import codec, tir  # noqa: E402
from etran.pipeline import check_source, compile_program  # noqa: E402
from etran.runtime import libbpf as lb  # noqa: E402
from etran.runtime.loader import LoadedObject, Program, load_object  # noqa: E402
from etran.testing.packets import tcp_frame, udp_frame  # noqa: E402

ECN_CE = 3
TCP_SYN, TCP_ACK = 0x02, 0x10
LOCAL, REMOTE = "10.0.0.1", "10.0.0.2"
SLOT_MAP_KINDS = ("XskMap", "DevMap")   # their values are sockets and devices: not readable
C_FLAGS = ["-O2", "-g", "-target", "bpf"]

Entries = dict[str, list[tuple[bytes, bytes]]]   # map name -> [(key, value)], encoded


@dataclass(frozen=True)
class Case:
    """How one pair is measured: the frame, the maps it starts from, the verdict it gets."""

    name: str                 # bench/c/NAME.c and bench/c/NAME.py
    frame: bytes
    action: int
    path: str                 # what the frame exercises, for the report
    # map name -> [(key, value)] as the twin declares them (etran.ir.codec's values)
    maps: dict[str, list[tuple[Any, Any]]] = field(default_factory=dict)


def _syn_options() -> bytes:
    """A SYN's options as Linux sends them: MSS, SACK permitted, timestamps, NOP, window scale."""
    return (bytes([2, 4]) + (1460).to_bytes(2, "big") + bytes([4, 2])
            + bytes([8, 10]) + (123456).to_bytes(4, "big") + bytes(4) + bytes([1, 3, 3, 7]))


def _blocked(*ports: int) -> list[int]:
    words = [0] * 1024
    for port in ports:
        words[port >> 6] |= 1 << (port & 63)
    return words


CONN = {"snd_una": 1000, "snd_nxt": 1000 + 10 * 1448, "cwnd": 10 * 1448, "ssthresh": 5 * 1448,
        "alpha": 512, "window_end": 1000 + 1448}

CASES: list[Case] = [
    Case("counter", udp_frame(bytes(22)), XDP_PASS,
         "a UDP frame: its protocol's per-CPU slot counted"),
    Case("dctcp", tcp_frame(bytes(10), src=REMOTE, dst=LOCAL, sport=80, dport=5000,
                            ack=1000 + 1448, flags=TCP_ACK, tos=ECN_CE), XDP_PASS,
         "an ACK of new data with CE set, its connection registered: the window is cut on the "
         "first repetition, the later ones are duplicate ACKs (the state moves on)",
         {"conns": [({"local_ip": LOCAL, "remote_ip": REMOTE, "local_port": 5000,
                      "remote_port": 80}, CONN)]}),
    Case("token_bucket", udp_frame(bytes(22)), XDP_PASS,
         "a frame from a known source, refilled and charged (the bucket never runs dry)",
         {"buckets": [({"addr": LOCAL}, {"tokens": 1 << 30, "rate": 1 << 34, "burst": 1 << 30})]}),
    Case("tcp_options", tcp_frame(flags=TCP_SYN, options=_syn_options()), XDP_PASS,
         "a SYN with MSS, SACK permitted, timestamps, NOP, window scale: five steps"),
    Case("checksum", udp_frame(bytes(22)), XDP_TX,
         "an IPv4 frame reflected: addresses swapped, checksum summed again, MACs swapped"),
    Case("flow_table", tcp_frame(bytes(10)), XDP_PASS,
         "a TCP frame of a known flow: per-CPU totals and the flow's counters",
         {"flows": [({"src": LOCAL, "dst": REMOTE, "sport": 5000, "dport": 80, "protocol": 6},
                     {"packets": 1, "bytes": 64, "max_size": 64})]}),
    Case("spinlock_stats", udp_frame(bytes(22), dport=6000), XDP_PASS,
         "a UDP frame to a known port: its statistics updated under the entry's lock",
         {"ports": [(6000, {"count": 1, "total_bytes": 64, "smallest": 64, "largest": 64})]}),
    Case("port_firewall", tcp_frame(bytes(10), dport=80), XDP_DROP,
         "a TCP frame to a blocked port: the bit found set, the drop counted",
         {"config": [(0, {"enabled": True, "blocked": _blocked(22, 80, 6000)})]}),
]

# The baseline: what a measured run costs around any program (clock reads, dispatcher call).
EMPTY = "from etran.dsl import *\n\n\n@xdp\ndef nothing(pkt: Packet) -> int:\n    return XDP_PASS\n"


# --------------------------------------------------------------------------- loading

@dataclass
class Loaded:
    """One side of a pair, in the kernel: the object, its one program, and its numbers."""

    label: str
    obj: LoadedObject
    prog: Program

    def numbers(self) -> dict[str, int]:
        return {"insns": self.prog.xlated_insn_count(), "jit_bytes": self.prog.jited_size(),
                "processed": self.prog.stats.processed_insns}


def build_twin(name: str) -> tuple[tir.Program, bytes]:
    """Check and compile bench/c/NAME.py: the checked program (its map declarations say how
    to encode the case's maps) and the ELF object."""
    src = C_DIR / f"{name}.py"
    program = check_source(src.read_text(), str(src))
    return program, compile_program(program).elf


def load(label: str, elf: bytes, hook: str, name: str) -> Loaded:
    obj = load_object(elf, name=name[:15])
    if hook not in obj.programs:
        obj.close()
        raise SystemExit(f"{name}: the {label} object has programs {sorted(obj.programs)}, "
                         f"not {hook!r}: name the C function as the twin's hook")
    return Loaded(label, obj, obj.programs[hook])


def check_layouts(program: tir.Program, twin: Loaded, other: Loaded) -> None:
    """The C object's maps must be the twin's (same names, types, key and value sizes): the
    case's maps are encoded once, from the twin's declarations, and written to both."""
    for decl in program.maps:
        mine, theirs = twin.obj.maps[decl.name], other.obj.maps.get(decl.name)
        shape = (mine.map_type, mine.key_size, mine.value_size, mine.max_entries)
        if theirs is None or (theirs.map_type, theirs.key_size, theirs.value_size,
                              theirs.max_entries) != shape:
            raise SystemExit(f"{program.name}: map {decl.name!r} is {mine} in the twin but "
                             f"{theirs} in the {other.label} object")


def encode_maps(program: tir.Program, case: Case) -> Entries:
    out: Entries = {}
    for name, entries in case.maps.items():
        decl = program.map(name)
        out[name] = [(codec.encode(decl.key, k, f"{name} key"),
                      codec.encode(decl.value, v, f"{name} value")) for k, v in entries]
    return out


def reset(side: Loaded, entries: Entries) -> None:
    """Empty every map of the object, then write the case's entries (per-CPU values to
    every CPU): each measurement starts from the same state."""
    for m in side.obj.maps.values():
        m.clear()
    for name, items in entries.items():
        for key, value in items:
            side.obj.maps[name].update(key, value)


# --------------------------------------------------------------------------- agreement

def _untimed(value: Any) -> Any:
    """A decoded map value without its time stamps (`*_ns` fields): now_ns() differs
    between any two runs."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if not k.endswith("_ns")}
    return value


def snapshot(program: tir.Program, side: Loaded) -> dict[str, list[Any]]:
    """Every readable map of `side`, decoded with the twin's declarations, time stamps aside."""
    out: dict[str, list[Any]] = {}
    for decl in program.maps:
        if decl.kind in SLOT_MAP_KINDS:
            continue
        m = side.obj.maps[decl.name]
        step = (m.value_size + 7) & ~7 if m.is_percpu else m.value_size  # one per CPU
        out[decl.name] = sorted(
            (key.hex(), [_untimed(codec.decode(decl.value, raw[i:i + step]))
                         for i in range(0, len(raw), step)])
            for key, raw in m.items())
    return out


def disagreements(program: tir.Program, case: Case, sides: list[Loaded]) -> list[str]:
    """Run each side once from the case's maps on its frame; what differs between them, or
    from the case's verdict."""
    entries = encode_maps(program, case)
    seen = []
    for side in sides:
        reset(side, entries)
        result = side.prog.test_run(case.frame)
        seen.append((side.label, result.retval, result.data, snapshot(program, side)))
    problems = []
    for label, retval, _, _ in seen:
        if retval != case.action:
            problems.append(f"{label} returned {XDP_ACTION_NAMES.get(retval, retval)}, the case "
                            f"expects {XDP_ACTION_NAMES[case.action]}")
    (a, _, frame_a, maps_a), (b, _, frame_b, maps_b) = seen[0], seen[-1]
    if frame_a != frame_b:
        problems.append(f"the frames out differ:\n  {a}: {frame_a.hex()}\n  {b}: {frame_b.hex()}")
    for name in maps_a:
        if maps_a[name] != maps_b.get(name):
            problems.append(f"map {name!r} differs:\n  {a}: {maps_a[name]}\n  {b}: {maps_b.get(name)}")
    return problems


# --------------------------------------------------------------------------- timing

@contextmanager
def one_cpu() -> Iterator[int]:
    """Run on one CPU (the last we may use): test runs execute on the caller's CPU, and
    per-CPU maps must not change under a measurement."""
    before = os.sched_getaffinity(0)
    cpu = max(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


# struct bpf_prog_info (include/uapi/linux/bpf.h): the run-time statistics' offsets
INFO_RUN_TIME_NS, INFO_RUN_CNT = 192, 200
BPF_STATS_RUN_TIME = 0


@contextmanager
def run_time_stats() -> Iterator[None]:
    """Have the kernel time every run of every program while the block runs
    (BPF_ENABLE_STATS: on while the fd it returns is open, so nothing stays switched on)."""
    lib = ctypes.CDLL(lb.LIBRARY_NAME, use_errno=True)
    lib.bpf_enable_stats.argtypes = [ctypes.c_int]
    fd = lib.bpf_enable_stats(BPF_STATS_RUN_TIME)
    if fd < 0:
        raise SystemExit(f"BPF_ENABLE_STATS: {os.strerror(-fd)}")
    try:
        yield
    finally:
        os.close(fd)


def run_stats(prog: Program) -> tuple[int, int]:
    """The program's total run time (ns) and run count so far."""
    info = lb.obj_get_info(prog.fd)
    return struct.unpack_from("<Q", info, INFO_RUN_TIME_NS)[0], \
        struct.unpack_from("<Q", info, INFO_RUN_CNT)[0]


def time_sides(sides: list[tuple[Loaded, Entries]], frame: bytes, rounds: int,
               repeat: int) -> dict[str, dict[str, float]]:
    """Median ns per run of each side (starting from its map entries) over `rounds` test runs
    of `repeat` repetitions: the kernel's statistics, and the test run's own (whole-ns)
    figure. Needs run_time_stats(). The sides take turns, in an order reversed every other
    round, so drift (clock frequency, a noisy neighbour) falls on all of them."""
    samples: dict[str, list[tuple[float, int]]] = {side.label: [] for side, _ in sides}
    for side, entries in sides:   # warm up: caches, the JIT image, the map's buckets
        reset(side, entries)
        side.prog.test_run(frame, repeat=min(repeat, 1000))
    for r in range(rounds):
        for side, entries in sides if r % 2 == 0 else reversed(sides):
            reset(side, entries)
            ns0, runs0 = run_stats(side.prog)
            result = side.prog.test_run(frame, repeat=repeat)
            ns1, runs1 = run_stats(side.prog)
            if runs1 - runs0 != repeat:
                raise SystemExit("the kernel's run-time statistics are off: counted "
                                 f"{runs1 - runs0} runs of {repeat}")
            samples[side.label].append(((ns1 - ns0) / repeat, result.duration_ns))
    return {label: {"ns": statistics.median(n for n, _ in got),
                    "test_run_ns": statistics.median(k for _, k in got)}
            for label, got in samples.items()}


def load_empty() -> Loaded:
    """A program that only returns XDP_PASS: what the measurement itself costs per run."""
    return load("empty", compile_program(check_source(EMPTY, "nothing.py")).elf, "nothing",
                "nothing")


# --------------------------------------------------------------------------- clang

def install(packages: list[str]) -> None:
    """apt-get install `packages`, after an update if the first try fails (stale lists)."""
    if os.geteuid() != 0:
        raise SystemExit(f"needs {' '.join(packages)}: apt-get install -y {' '.join(packages)}")
    print(f"installing {' '.join(packages)} (apt-get)", file=sys.stderr)
    cmd = ["apt-get", "install", "-y", "-q", *packages]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"apt-get could not install {' '.join(packages)}:\n{done.stderr}")


def find_clang(requested: str) -> str:
    path = shutil.which(requested)
    if path is None and requested == "clang":
        install(["clang"])
        path = shutil.which("clang")
    if path is None:
        raise SystemExit(f"no {requested!r} on PATH")
    return path


def system_includes(verbose_output: str) -> list[str]:
    """`-idirafter DIR` for each directory of the host's include search list, read from the
    output of `clang -v -E -`. With `-target bpf` clang searches no multiarch directory, and
    <linux/bpf.h> includes <asm/types.h>, which lives in one (libbpf's own example builds pass
    the host's directories the same way)."""
    flags: list[str] = []
    inside = False
    for line in verbose_output.splitlines():
        if line.startswith("#include <...> search starts here:"):
            inside = True
        elif line.startswith("End of search list."):
            break
        elif inside and line.startswith(" "):
            flags += ["-idirafter", line.strip().removesuffix(" (framework directory)")]
    return flags


def c_flags(clang: str, mcpu: str) -> list[str]:
    """The compile flags, once clang can find <linux/bpf.h> and <bpf/bpf_helpers.h> (libbpf's
    headers are installed when it cannot)."""
    verbose = subprocess.run([clang, "-v", "-E", "-x", "c", "-", "-o", os.devnull], input="",
                             capture_output=True, text=True).stderr
    flags = [*C_FLAGS, f"-mcpu={mcpu}", *system_includes(verbose)]
    probe = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"

    def headers_found() -> bool:
        return subprocess.run([clang, *flags, "-E", "-x", "c", "-", "-o", os.devnull],
                              input=probe, capture_output=True, text=True).returncode == 0
    if not headers_found():
        install(["libbpf-dev", "linux-libc-dev"])
        if not headers_found():
            raise SystemExit("clang cannot find <linux/bpf.h> and <bpf/bpf_helpers.h>")
    return flags


def compile_c(clang: str, flags: list[str], source: Path, out: Path) -> bytes:
    done = subprocess.run([clang, *flags, "-c", str(source), "-o", str(out)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"clang failed on {source.name}:\n{done.stderr}")
    return out.read_bytes()


# --------------------------------------------------------------------------- the run

MEASURED = ("insns", "jit_bytes", "processed", "ns")
RATIOS = (*MEASURED, "net_ns")
HEADINGS = {"insns": "insns", "jit_bytes": "JIT bytes", "processed": "processed", "ns": "ns/packet"}


def ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def measure(case: Case, clang: str, flags: list[str], objects: Path, empty: Loaded, rounds: int,
            repeat: int) -> dict[str, Any]:
    """Both sides of one pair: their numbers, and the ratios etran/clang. The empty program
    takes its turns with them, and the last ratio, `net_ns`, is of the times above its."""
    program, elf = build_twin(case.name)
    if len(program.hooks) != 1:
        raise SystemExit(f"{case.name}.py has hooks {[h.name for h in program.hooks]}: a twin "
                         "has one, as its C file has one program")
    hook = program.hooks[0].name
    (objects / f"{case.name}.etran.o").write_bytes(elf)
    c_elf = compile_c(clang, flags, C_DIR / f"{case.name}.c", objects / f"{case.name}.clang.o")
    sides = [load("etran", elf, hook, case.name)]
    try:
        sides.append(load("clang", c_elf, hook, case.name))
        check_layouts(program, sides[0], sides[1])
        problems = disagreements(program, case, sides)
        if problems:
            raise SystemExit(f"{case.name}: the twins do not do the same work:\n"
                             + "\n".join(problems))
        entries = encode_maps(program, case)
        times = time_sides([(sides[0], entries), (sides[1], entries), (empty, {})], case.frame,
                           rounds, repeat)
        result: dict[str, Any] = {"path": case.path, "empty_ns": times["empty"]["ns"]}
        for side in sides:
            result[side.label] = {**side.numbers(), **times[side.label]}
        result["ratio"] = {m: ratio(result["etran"][m], result["clang"][m]) for m in MEASURED}
        base = result["empty_ns"]
        result["ratio"]["net_ns"] = ratio(result["etran"]["ns"] - base, result["clang"]["ns"] - base)
        return result
    finally:
        for side in sides:
            side.obj.close()


def _cell(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def table(results: dict[str, dict[str, Any]], medians: dict[str, float | None]) -> str:
    """Markdown: per metric etran, clang and their ratio; the last column is the ratio of
    the times net of the empty program's."""
    head = "| program |" + "".join(f" {HEADINGS[m]} etran | clang | ratio |" for m in MEASURED)
    lines = [head + " net ratio |", "|" + " --- |" * (2 + 3 * len(MEASURED))]
    for name, r in results.items():
        row = f"| {name} |"
        for m in MEASURED:
            digits = 1 if m == "ns" else 0
            row += (f" {_cell(r['etran'][m], digits)} | {_cell(r['clang'][m], digits)} |"
                    f" {_cell(r['ratio'][m], 2)} |")
        lines.append(row + f" {_cell(r['ratio']['net_ns'], 2)} |")
    lines.append("| median ratio |" + "".join(f" | | {_cell(medians[m], 2)} |" for m in MEASURED)
                 + f" {_cell(medians['net_ns'], 2)} |")
    return "\n".join(lines)


def clang_version(clang: str) -> str:
    first = subprocess.run([clang, "--version"], capture_output=True, text=True).stdout
    return first.splitlines()[0] if first else clang


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15, help="alternating rounds per pair (median)")
    ap.add_argument("--repeat", type=int, default=100_000, help="test-run repetitions per round")
    ap.add_argument("--only", default="", help="comma-separated pair names (default: all)")
    ap.add_argument("--clang", default="clang", help="the C compiler (installed if 'clang' is missing)")
    ap.add_argument("--mcpu", default="v3", help="clang's -mcpu (etran emits v3)")
    ap.add_argument("--objects", type=Path, help="keep both objects of each pair here "
                    "(NAME.clang.o, NAME.etran.o) for llvm-objdump -d")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args()

    wanted = [n for n in args.only.split(",") if n]
    unknown = set(wanted) - {c.name for c in CASES}
    if unknown:
        ap.error(f"no pair named {', '.join(sorted(unknown))}")
    cases = [c for c in CASES if not wanted or c.name in wanted]
    clang = find_clang(args.clang)
    flags = c_flags(clang, args.mcpu)

    with tempfile.TemporaryDirectory(prefix="etran-vs-clang-") as tmp, one_cpu() as cpu, \
            run_time_stats():
        objects = args.objects or Path(tmp)
        objects.mkdir(parents=True, exist_ok=True)
        empty = load_empty()
        try:
            results = {c.name: measure(c, clang, flags, objects, empty, args.rounds, args.repeat)
                       for c in cases}
        finally:
            empty.obj.close()
    medians: dict[str, float | None] = {}
    for m in RATIOS:
        got = [r["ratio"][m] for r in results.values() if r["ratio"][m] is not None]
        medians[m] = statistics.median(got) if got else None
    setup = {"clang": clang_version(clang), "clang_flags": C_FLAGS + [f"-mcpu={args.mcpu}"],
             "etran_llvm": ".".join(map(str, llvm.llvm_version_info)),
             "kernel": platform.release(), "cpu": cpu, "rounds": args.rounds,
             "repeat": args.repeat}
    if args.json:
        print(json.dumps({"setup": setup, "programs": results, "median_ratio": medians}, indent=2))
        return 0
    print(f"{setup['clang']}, {' '.join(setup['clang_flags'])}, against etran (LLVM "
          f"{setup['etran_llvm']}, cpu v3); Linux {setup['kernel']}; ns/packet: median of "
          f"{args.rounds} rounds of {args.repeat:,} test runs on CPU {cpu}\n")
    print(table(results, medians))
    empty_ns = statistics.median(r["empty_ns"] for r in results.values())
    print(f"\nan empty program: {empty_ns:.1f} ns per run, in every ns/packet above (the clock "
          "reads and the dispatcher's call); the net ratio is of the times above it")
    print("\nframes:")
    for name, r in results.items():
        print(f"  {name}: {r['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

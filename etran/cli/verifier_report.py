"""The kernel verifier's verdicts, next to the checker's estimates; a rejection explained in
the language's terms, at the DSL line that caused it.

Every command that loads a transport into the kernel (`verify`, `run`, `fuzz`, `up`,
`check --kernel-decides`) reports each hook in one format, `verdict_lines`:

    rx: accepted by the kernel verifier, 1,234 instructions processed (checker estimate 5,678)

The kernel's log already names DSL lines: every instruction carries line info
from the object's .BTF.ext, and the log prints `; <source line> @ file.py:N`
before the instructions of each line. The report finds the last such marker
before the verifier's error, shows that source line, translates the error into
what to change in the program, and keeps the log's last steps (with their DSL
lines) for readers who want the evidence. The full log stays available.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from etran.dsl.diagnostics import Diagnostic, Source, Span, render
from etran.lower.observe import FIRE_SUFFIX
from etran.runtime.errors import error_lines

if TYPE_CHECKING:
    from etran.ir import tir
    from etran.runtime.loader import LoadedObject

_MARKER = re.compile(r"^; (?P<text>.*) @ (?P<file>[^:@]+):(?P<line>\d+)$")
_INSN = re.compile(r"^\d+: \(")

# Verifier messages and what they mean for a program in this language.
_HINTS: list[tuple[str, str]] = [
    (r"invalid access to packet|outside of the packet",
     "a packet access is not covered by a bounds check: read packet data only through "
     "`pkt.header(H, offset)` views checked with `is None`"),
    (r"invalid mem access 'map_value_or_null'|invalid mem access 'scalar'",
     "a map lookup result is used without a None check: `if v is None: return ...`"),
    (r"back-edge|infinite loop detected",
     "a loop the verifier cannot bound: loop only over `range(N)` with N a constant"),
    (r"BPF program is too large|too many states|complexity limit",
     "the program is too complex for the verifier: lower loop bounds or split the work"),
    (r"combined stack size|stack size|invalid (?:read|write) from stack",
     "too much stack: keep large structs in a map (a PerCpuArray scratch slot)"),
    (r"function calls are not allowed while holding a lock|bpf_spin_unlock",
     "inside `with v.lock:` the program may not call helpers, look up maps or leave early"),
    (r"unbounded memory access|min value is negative|math between .* pointer",
     "an index or offset the verifier cannot bound: compare it with a constant first"),
    (r"R\d+ !read_ok|uninit",
     "a value is read before it is written (report this: the compiler should prevent it)"),
]


@dataclass(frozen=True, slots=True)
class Rejection:
    program: str
    message: str                       # the verifier's own error line
    file: str | None
    line: int | None
    trail: tuple[str, ...]             # the last log lines before the error
    hint: str | None


def parse_rejection(program: str, log: str, error_line: str | None = None) -> Rejection:
    lines = [ln.rstrip() for ln in log.splitlines() if ln.strip()]
    error_line = error_line or error_lines(log)[0]
    err_idx = None
    if error_line:
        for i in range(len(lines) - 1, -1, -1):
            if lines[i].strip() == error_line.strip():
                err_idx = i
                break
    err_idx = len(lines) - 1 if err_idx is None else err_idx
    message = error_line or (lines[err_idx] if lines else "the verifier gave no reason")
    file = line = None
    for i in range(err_idx, -1, -1):
        m = _MARKER.match(lines[i])
        if m:
            file, line = m.group("file"), int(m.group("line"))
            break
    hint = None
    window = " ".join(lines[max(err_idx - 2, 0):err_idx + 2])
    for pattern, text in _HINTS:
        if re.search(pattern, window):
            hint = text
            break
    trail = tuple(lines[max(err_idx - 10, 0):err_idx + 1])
    return Rejection(program, message, file, line, trail, hint)


def render_rejection(r: Rejection, sources: dict[str, str], full_log: str | None = None,
                     verdict: str | None = None) -> str:
    """A diagnostic at the DSL line, the `verdict` line (processed count and estimate) if
    given, then the verifier's last steps, then (optionally) the log."""
    span = None
    if r.file is not None and r.line is not None:
        for name, text in sources.items():
            if name.rsplit("/", 1)[-1] == r.file:
                src = Source(name, text)
                stripped = src.line(r.line)
                col = len(stripped) - len(stripped.lstrip()) + 1
                span = Span(src, r.line, col, r.line, len(stripped) + 1)
                break
    hints = (r.hint,) if r.hint else ()
    diag = Diagnostic(span, "verifier", f"the kernel verifier rejected `{r.program}`: {r.message}",
                      hints)
    out = [render([diag])]
    if span is None and r.file is not None:
        out.append(f"  at {r.file}:{r.line}")
    if verdict is not None:
        out.append(verdict)
    out.append("  verifier trace (last steps; `;` lines are DSL source):")
    out.extend("    " + ln for ln in r.trail)
    if full_log is not None:
        out.append("  full verifier log:")
        out.extend("    " + ln for ln in full_log.rstrip().splitlines())
    else:
        out.append("  (run with --log for the full verifier log)")
    return "\n".join(out)


# ---------------------------------------------------------------- verdicts
def counts(processed: int | None, estimate: int | None) -> str:
    """"1,234 instructions processed (checker estimate 5,678)", or what of it is known."""
    parts = [f"{processed:,} instructions processed"] if processed else []
    if estimate is not None:
        parts.append(f"(checker estimate {estimate:,})")
    return " ".join(parts)


def verdict_line(hook: str, verdict: str, processed: int | None, estimate: int | None) -> str:
    """One hook: the kernel's verdict and processed count, then the checker's estimate."""
    known = counts(processed, estimate)
    return f"  {hook}: {verdict} by the kernel verifier" + (f", {known}" if known else "")


def estimate_of(program: tir.Program | None, hook: str) -> int | None:
    """The checker's estimate of the verifier's work for `hook` (or its `__fire` program)."""
    if program is None:
        return None
    est = program.budgets.get(hook.removesuffix(FIRE_SUFFIX))
    return est.processed if est is not None else None


def verdict_lines(program: tir.Program, loaded: LoadedObject, details: bool = False) -> list[str]:
    """A line for every hook of `program` in the loaded object, in source order.

    A @timer handler has a program of its own only in an observing build (`<handler>__fire`,
    which fires it on demand); otherwise the kernel verifies it as a callback inside the
    programs that start its timer, and its line says so. `details` adds the verifier's
    other statistics (`etran verify`)."""
    out = []
    for hook in program.hooks:
        prog = loaded.programs.get(hook.name) or loaded.programs.get(hook.name + FIRE_SUFFIX)
        estimate = estimate_of(program, hook.name)
        if prog is None:
            out.append(f"  {hook.name}: no program of its own: the kernel verifies it as a "
                       "callback inside the hooks that start its timer"
                       + (f" (checker estimate {estimate:,})" if estimate is not None else ""))
            continue
        s = prog.stats
        line = verdict_line(hook.name, "accepted", s.processed_insns, estimate)
        if details:
            line += (f", {s.total_states} states (peak {s.peak_states}), "
                     f"stack {'+'.join(map(str, s.stack_depth)) or '0'} bytes, "
                     f"{prog.xlated_insn_count()} instructions loaded, "
                     f"verified in {s.verification_time_us} us")
        out.append(line)
    return out


def rejection_line(program: tir.Program | None, rejected: str, log: str) -> str:
    """The verdict line of the program the kernel rejected (`<handler>__fire` is its handler)."""
    from etran.runtime.loader import VerifierStats
    return verdict_line(rejected.removesuffix(FIRE_SUFFIX), "rejected",
                        VerifierStats.parse(log).processed_insns, estimate_of(program, rejected))

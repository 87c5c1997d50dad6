"""Diagnostics: what every pass reports, and how it is shown to a user.

Collecting and rendering are separate: passes build `Diagnostic` values that
carry a `Span` and a rule name; `render` turns them into the text a user
reads::

    flow.py:12:9: error[none-check]: `c` may be None here
       12 |     c.cwnd += 1
          |     ^
      hint: check it first: `if c is None: return XDP_PASS`

A pass reports every error it finds; the pipeline stops between passes when
there are errors (`DiagnosticError` carries them all).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Source:
    """A source file as the compiler saw it: its name and full text."""

    name: str
    text: str

    def line(self, number: int) -> str:
        lines = self.text.splitlines()
        if 1 <= number <= len(lines):
            return lines[number - 1]
        return ""


@dataclass(frozen=True, slots=True)
class Span:
    """A region of a source file; lines and columns start at 1, ends are inclusive-exclusive."""

    source: Source = field(repr=False, compare=False)
    line: int
    col: int
    end_line: int
    end_col: int

    @property
    def file(self) -> str:
        return self.source.name

    def __str__(self) -> str:
        return f"{self.source.name}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in a user's program, with where it is and what to do about it."""

    span: Span | None
    rule: str
    message: str
    hints: tuple[str, ...] = ()
    severity: str = "error"

    def render(self) -> str:
        return render([self])


class DiagnosticError(Exception):
    """Raised between passes when a pass found errors; carries all of them."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__(render(self.diagnostics))


class DiagnosticSink:
    """Where a pass collects what it finds; `raise_if_errors` ends the pass."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, span: Span | None, rule: str, message: str, *hints: str) -> None:
        self.items.append(Diagnostic(span, rule, message, tuple(hints)))

    def warning(self, span: Span | None, rule: str, message: str, *hints: str) -> None:
        self.items.append(Diagnostic(span, rule, message, tuple(hints), "warning"))

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.items)

    def raise_if_errors(self) -> None:
        if self.has_errors:
            raise DiagnosticError(self.sorted())

    def sorted(self) -> list[Diagnostic]:
        def key(d: Diagnostic) -> tuple[str, int, int]:
            if d.span is None:
                return ("", 0, 0)
            return (d.span.file, d.span.line, d.span.col)

        return sorted(self.items, key=key)


def _caret_line(span: Span, text: str) -> str:
    start = max(span.col - 1, 0)
    if span.end_line == span.line and span.end_col > span.col:
        width = span.end_col - span.col
    else:
        width = max(len(text.rstrip()) - start, 1)
    # Keep tabs so the caret lines up under the source as the terminal shows it.
    prefix = "".join(ch if ch == "\t" else " " for ch in text[:start])
    return prefix + "^" + "~" * (width - 1)


def render(diagnostics: Iterable[Diagnostic]) -> str:
    """Render diagnostics as `file:line:col: error[rule]: message`, source, caret, hints."""
    out: list[str] = []
    for d in diagnostics:
        if d.span is None:
            out.append(f"{d.severity}[{d.rule}]: {d.message}")
        else:
            s = d.span
            out.append(f"{s}: {d.severity}[{d.rule}]: {d.message}")
            text = s.source.line(s.line)
            if text:
                gutter = f"{s.line:>5} | "
                out.append(gutter + text.rstrip())
                out.append(" " * (len(gutter) - 2) + "| " + _caret_line(s, text))
        for h in d.hints:
            out.append(f"  hint: {h}")
    return "\n".join(out)

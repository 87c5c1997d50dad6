"""Side-by-side display of a kernel run and an interpreter run, for `etran run`, `etran fuzz`'s
counterexamples and the demo: of a packet hook on a frame, or of a @timer handler fired for
one map entry."""
from __future__ import annotations

from typing import Any

from etran.abi import XDP_ACTION_NAMES
from etran.interp.state import MapStore, RunResult
from etran.ir import codec, tir

WIDTH = 34


def action_name(a: int | None) -> str:
    return "-" if a is None else f"{XDP_ACTION_NAMES.get(a, 'unknown')} ({a})"


def _decode_entries(program: tir.Program, name: str, snap: Any) -> list[str]:
    m = program.map(name)
    if isinstance(snap, list):  # a queue
        return [_fmt(codec.decode(m.value, v, pretty=True)) for v in snap]
    out = []
    for k, v in snap.items():
        key = codec.decode(m.key, k, pretty=True) if m.key is not None else k.hex()
        if isinstance(v, list):
            val = "per CPU: " + " | ".join(_fmt(codec.decode(m.value, x, pretty=True)) for x in v)
        elif isinstance(v, int):
            val = str(v)
        else:
            val = _fmt(codec.decode(m.value, v, pretty=True))
        out.append(f"{_fmt(key)} -> {val}")
    return out


def _fmt(v: Any) -> str:
    return codec.format_value(v, compact=True)


def _row(label: str, left: str, right: str) -> str:
    same = left == right
    return f"  {label:<16} {left:<{WIDTH}} {'same' if same else right}"


def timer_map(program: tir.Program, handler: str) -> Any:
    """The map whose entries the @timer handler `handler` fires for."""
    fn = program.hook(handler)
    assert fn.timer_field is not None
    value, _ = fn.timer_field
    return next(m for m in program.maps if m.value is value)


def show_side_by_side(program: tir.Program, packet: bytes, before: MapStore, kernel: RunResult,
                      interp: RunResult, diffs: list[Any],
                      timer: tuple[str, bytes] | None = None) -> str:
    """Both runs in two columns; `timer` = (handler, key) for a @timer handler fired for the
    entry with that key (no packet, no action: the rows about them are left out)."""
    lines = []
    if timer is not None:
        m = timer_map(program, timer[0])
        key = codec.decode(m.key, timer[1], pretty=True)
        lines.append(f"  @timer {timer[0]} fired for {m.name}[{_fmt(key)}]")
    lines.append(f"  {'':<16} {'kernel':<{WIDTH}} interpreter")
    if timer is None:
        lines.append(_row("action", action_name(kernel.action), action_name(interp.action)))

        def pkt(p: bytes) -> str:
            if p == packet:
                return f"{len(p)} bytes, unchanged"
            return f"{len(p)} bytes, changed"
        lines.append(_row("packet", pkt(kernel.packet), pkt(interp.packet)))
        if kernel.packet != packet or interp.packet != packet:
            lines.append(f"    kernel bytes:      {kernel.packet.hex()}")
            if interp.packet != kernel.packet:
                lines.append(f"    interpreter bytes: {interp.packet.hex()}")

        def redir(r: RunResult) -> str:
            if r.redirect is None:
                return "-"
            target = f"{r.redirect[0]}[{r.redirect[1]}]"
            return target if r.action == 4 else f"{target}: empty, fell back"
        lines.append(_row("redirect", redir(kernel), redir(interp)))
    kt = ", ".join(f"{t.map}.{t.field} in {t.delay_ns} ns" for t in kernel.timers) or "-"
    it = ", ".join(f"{t.map}.{t.field} in {t.delay_ns} ns" for t in interp.timers) or "-"
    lines.append(_row("timers started", kt, it))
    for name in sorted(set(kernel.ringbuf) | set(interp.ringbuf)):
        lines.append(_row(f"ring {name}", f"{len(kernel.ringbuf.get(name, []))} records",
                          f"{len(interp.ringbuf.get(name, []))} records"))
    ks, is_, bs = kernel.maps.snapshot(), interp.maps.snapshot(), before.snapshot()
    for name in ks:
        if ks[name] == bs.get(name) and is_.get(name) == bs.get(name):
            continue
        lines.append(f"  map {name} after the run:")
        left = _decode_entries(program, name, ks[name])
        right = _decode_entries(program, name, is_.get(name, {}))
        if left == right:
            lines.extend(f"    {x}" for x in left or ["(empty)"])
        else:
            lines.extend(f"    kernel:      {x}" for x in left or ["(empty)"])
            lines.extend(f"    interpreter: {x}" for x in right or ["(empty)"])
    if diffs:
        lines.append(f"MISMATCH: {len(diffs)} difference{'s' if len(diffs) != 1 else ''}")
        lines.extend(f"  - {d}" for d in diffs)
    else:
        lines.append("the kernel and the interpreter agree")
    return "\n".join(lines)

"""`etran trace RUN`: record TCP's congestion control per ACK from a run, and plot it.

    etran up etran/transports/tcp.py --link a=etran/transports/tcp_link.py
    etran trace <id> --host a --seconds 10 --out trace.svg     # meanwhile: etran nc ...

The TCP data path writes a record to its `trace` ring for every ACK that acknowledges new
data (etran/transports/tcp.py): cwnd, DCTCP's alpha, srtt, and whether the ACK echoed a CE
mark. This reads the ring of one host for a while and writes an SVG a browser opens: four
panels over the ACK number (cwnd in segments, alpha as a fraction, srtt in microseconds, the
fraction of the last 32 ACKs that echoed CE), one line per connection.

With Homa (`etran up etran/transports/homa.py`) the ring holds a record per GRANT the
receiver's scheduler decided, and the plot shows, over time, each message's granted offset
and the bytes it had received when granted (its SRPT rank in each point's title).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from etran.runtime import runs

WIDTH, PANEL, MARGIN = 900, 170, 60
WINDOW = 32     # ACKs over which the marked fraction is averaged
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def add_trace(subparsers: Any, guarded: Any) -> None:
    tr = subparsers.add_parser("trace", help="record TCP's cwnd, alpha, srtt and CE marks per "
                               "ACK (or Homa's grants per message) from a run and write a "
                               "plot (SVG)")
    tr.add_argument("run", help="the run id (see `etran status`)")
    tr.add_argument("--host", default="a", help="whose connections (default a)")
    tr.add_argument("--seconds", type=float, default=10.0,
                    help="how long to record (default 10; Ctrl-C stops early)")
    tr.add_argument("--out", default="trace.svg", help="the plot (default trace.svg)")
    tr.set_defaults(func=lambda args: guarded("trace", _trace, args))


def _trace(args: argparse.Namespace) -> int:
    from etran.ir import codec
    from etran.runtime.maps import Map, RingBufferReader
    from etran.tcp.stack import _transport

    record = runs.find_run(args.run)
    if record is None:
        print(f"etran trace: no run {args.run}; `etran status` lists the runs", file=sys.stderr)
        return 2
    if args.host not in record.hosts:
        print(f"etran trace: run {args.run} has hosts {', '.join(record.hosts)}, not "
              f"{args.host!r}", file=sys.stderr)
        return 2
    ring_path = os.path.join(runs.reachable_pin_dir(record), args.host, "maps", "trace")
    if not os.path.exists(ring_path):
        print(f"etran trace: run {args.run} is not running etran's TCP or Homa transport (no "
              f"trace ring on host {args.host})", file=sys.stderr)
        return 2
    homa = os.path.exists(os.path.join(os.path.dirname(ring_path), "cands"))
    if homa:
        from etran.homa.stack import TRANSPORT as HOMA
        from etran.runtime.typed import program_of
        layout = program_of(HOMA).map("trace").value
    else:
        layout = _transport().program.map("trace").value
    rows: list[dict[str, int]] = []
    with Map.from_pinned(ring_path) as ring, RingBufferReader(ring) as reader:
        reader.drain()      # what was written before we started
        print(f"etran trace: recording host {args.host} of run {args.run} for "
              f"{args.seconds:g} s (Ctrl-C to stop)", flush=True)
        deadline = time.monotonic() + args.seconds
        try:
            while time.monotonic() < deadline:
                rows += [codec.decode(layout, raw) for raw in reader.drain()]
                time.sleep(0.05)
        except KeyboardInterrupt:
            pass
        rows += [codec.decode(layout, raw) for raw in reader.drain()]
    if homa:
        with open(args.out, "w") as f:
            f.write(grants_svg(rows, f"run {args.run}, host {args.host}"))
        messages = {(r["id"], r["peer"], r["peer_port"]) for r in rows}
        print(f"etran trace: {len(rows)} GRANTs to {len(messages)} message"
              f"{'s' if len(messages) != 1 else ''} written to {args.out}")
        return 0
    with open(args.out, "w") as f:
        f.write(svg(rows, f"run {args.run}, host {args.host}"))
    flows = {(r["peer_port"], r["local_port"]) for r in rows}
    print(f"etran trace: {len(rows)} ACKs of {len(flows)} connection"
          f"{'s' if len(flows) != 1 else ''} written to {args.out}")
    return 0


def svg(rows: list[dict[str, int]], title: str) -> str:
    """Four panels over the ACK number, one polyline per connection in each."""
    flows: dict[tuple[int, int], list[dict[str, int]]] = {}
    for r in rows:
        flows.setdefault((r["local_port"], r["peer_port"]), []).append(r)
    series = {
        "cwnd (segments)": lambda rs: [r["cwnd"] for r in rs],
        "DCTCP alpha": lambda rs: [r["alpha"] / 1024 for r in rs],
        "srtt (us)": lambda rs: [r["srtt_us"] for r in rs],
        f"CE-echoed fraction of the last {WINDOW} ACKs": _marked,
    }
    height = MARGIN + len(series) * (PANEL + MARGIN)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
           f'<text x="{MARGIN}" y="24" font-size="15">etran TCP: {title}, {len(rows)} ACKs'
           '</text>']
    for n, (name, pick) in enumerate(series.items()):
        top = MARGIN + n * (PANEL + MARGIN)
        values = {flow: pick(rs) for flow, rs in flows.items()}
        high = max((max(v) for v in values.values() if v), default=1) or 1
        longest = max((len(v) for v in values.values()), default=1)
        out.append(f'<text x="{MARGIN}" y="{top - 8}">{name} (max {high:g})</text>')
        out.append(f'<rect x="{MARGIN}" y="{top}" width="{WIDTH - 2 * MARGIN}" '
                   f'height="{PANEL}" fill="none" stroke="#999"/>')
        for i, (flow, v) in enumerate(values.items()):
            points = " ".join(
                f"{MARGIN + k * (WIDTH - 2 * MARGIN) / max(longest - 1, 1):.1f},"
                f"{top + PANEL - y * PANEL / high:.1f}" for k, y in enumerate(v))
            colour = COLOURS[i % len(COLOURS)]
            out.append(f'<polyline class="flow" data-flow="{flow[0]}-{flow[1]}" '
                       f'fill="none" stroke="{colour}" stroke-width="1.2" points="{points}"/>')
        out.append(f'<text x="{WIDTH - MARGIN}" y="{top + PANEL + 16}" text-anchor="end">'
                   f'ACK number (0 to {max(longest - 1, 0)})</text>')
    out.append("</svg>\n")
    return "\n".join(out)


def grants_svg(rows: list[dict[str, int]], title: str) -> str:
    """Homa's grants over time: for each message, the offset granted (solid) and the bytes
    it had received when granted (dotted), one colour per message; the SRPT rank of each
    grant is in its point's title."""
    messages: dict[tuple[int, int, int], list[dict[str, int]]] = {}
    for r in rows:
        messages.setdefault((r["id"], r["peer"], r["peer_port"]), []).append(r)
    height = 2 * MARGIN + 2 * PANEL
    start = min((r["now_ns"] for r in rows), default=0)
    span = max((r["now_ns"] - start for r in rows), default=1) or 1
    high = max((r["offset"] for r in rows), default=1) or 1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
           f'<text x="{MARGIN}" y="24" font-size="15">etran Homa: {title}, {len(rows)} GRANTs '
           f'to {len(messages)} messages</text>',
           f'<rect x="{MARGIN}" y="{MARGIN}" width="{WIDTH - 2 * MARGIN}" height="{2 * PANEL}" '
           'fill="none" stroke="#999"/>',
           f'<text x="{MARGIN}" y="{MARGIN - 8}">bytes granted (solid) and received when '
           f'granted (dotted), max {high:,}</text>']

    def xy(r: dict[str, int], field: str) -> str:
        x = MARGIN + (r["now_ns"] - start) / span * (WIDTH - 2 * MARGIN)
        y = MARGIN + 2 * PANEL - r[field] / high * 2 * PANEL
        return f"{x:.1f},{y:.1f}"
    for i, (msg, rs) in enumerate(messages.items()):
        colour = COLOURS[i % len(COLOURS)]
        for field, dash in (("offset", ""), ("received", ' stroke-dasharray="3,3"')):
            out.append(f'<polyline class="message" data-message="{msg[0]:#x}" fill="none" '
                       f'stroke="{colour}"{dash} points="{" ".join(xy(r, field) for r in rs)}"/>')
        for r in rs:
            out.append(f'<circle cx="{xy(r, "offset").split(",")[0]}" '
                       f'cy="{xy(r, "offset").split(",")[1]}" r="2" fill="{colour}">'
                       f'<title>rank {r["rank"]}</title></circle>')
    out.append(f'<text x="{WIDTH - MARGIN}" y="{height - MARGIN + 16}" text-anchor="end">'
               f'time (0 to {span / 1e6:.1f} ms)</text>')
    out.append("</svg>\n")
    return "\n".join(out)


def _marked(rs: list[dict[str, int]]) -> list[float]:
    out, window = [], []
    for r in rs:
        window.append(r["ece"])
        if len(window) > WINDOW:
            window.pop(0)
        out.append(sum(window) / len(window))
    return out

"""The runtime's command-line verbs: ``etran up``, ``etran status``, ``etran down``.

``etran up FILE --topology two-hosts|incast:N`` builds the hosts, loads the transport once per
host (each host has its own maps, as separate machines would), attaches its ``@xdp`` program
to every host's interface, pins links, maps and programs under ``/sys/fs/bpf/etran/<run>/``
and exits, leaving the run in place; ``--hold`` keeps it in the foreground instead and tears
it down on Ctrl-C or SIGTERM. It prints each hook's verdict from the kernel verifier next to
the checker's estimate (``etran.cli.verifier_report.verdict_lines``); ``--kernel-decides``
loads a hook whose estimate is over the verifier's limit anyway. ``etran status`` lists every
run: hosts, attached programs, interface counters, maps with a few entries (decoded with the
struct declarations of the run's source file; a ring buffer with its size in bytes), and
anything ``etran-*`` no run accounts for.
``etran down`` removes everything (``--run ID`` one run; ``--orphans`` only runs whose
process died) and checks that nothing is left.

Handlers return the exit code: 0 success, 1 a problem in the user's program (diagnostics,
verifier rejection), 2 a usage error or missing capability. Errors are one clear line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from etran.abi import LISTABLE_MAP_TYPES, MAP_TYPE_NAMES, RINGBUF_MAP_TYPE, XDP_MODES
from etran.runtime import netns, runs
from etran.runtime.errors import EtranRuntimeError, VerifierError

# What loads programs (etran.runtime.attach, .maps, .system: libbpf) is imported by the
# commands that use it, so that building this parser costs `etran check` nothing.

EXIT_OK, EXIT_PROGRAM, EXIT_USAGE = 0, 1, 2


def add_runtime_commands(subparsers: Any) -> None:
    """Add ``up``, ``status`` and ``down`` to an argparse subparsers object."""
    up = subparsers.add_parser("up", help="start hosts, load a transport and attach it")
    up.add_argument("file", help="the transport source (.py)")
    up.add_argument("--topology", default="two-hosts", metavar="KIND",
                    help="two-hosts (default) or incast:N")
    up.add_argument("--mode", choices=sorted(XDP_MODES), default="native",
                    help="XDP attach mode (default: native)")
    up.add_argument("--hold", action="store_true",
                    help="stay in the foreground; tear down on Ctrl-C or SIGTERM")
    up.add_argument("--kernel-decides", action="store_true",
                    help="when the checker's (pessimistic) estimate of verifier work is over "
                    "the kernel's limit, warn and load anyway: the kernel verifier decides")
    up.add_argument("--link", action="append", default=[], metavar="HOST=PROGRAM.py",
                    help="run PROGRAM.py's @xdp hook on the switch port facing HOST, i.e. on "
                    "what HOST sends (drops, marks; e.g. etran/transports/tcp_link.py); "
                    "repeatable")
    up.add_argument("--no-daemon", action="store_true",
                    help="for etran's TCP and Homa transports: start no per-host daemon (by "
                    "default each host gets one, and applications reach the data path "
                    "through it); a process may then run a host's stack itself")
    up.set_defaults(func=cmd_up)
    status = subparsers.add_parser("status", help="show runs: hosts, programs, maps, counters")
    status.add_argument("--entries", type=int, default=3, metavar="N",
                        help="map entries to show per map (default 3)")
    status.set_defaults(func=cmd_status)
    down = subparsers.add_parser("down", help="remove every namespace, link and pin of etran")
    down.add_argument("--run", metavar="ID", help="only this run")
    down.add_argument("--orphans", action="store_true",
                      help="only runs whose process died (and unaccounted leftovers)")
    down.set_defaults(func=cmd_down)


def _fail(message: str, code: int) -> int:
    print(f"etran: {message}", file=sys.stderr)
    return code


def _guarded(verb: str, handler: Callable[[argparse.Namespace], int],
             args: argparse.Namespace, admin: Callable[[], bool] = lambda: True) -> int:
    """Turn every expected failure into one line and an exit code. `admin()`: whether the
    command needs root this time (an application of a host with a daemon does not)."""
    from etran.dsl.diagnostics import DiagnosticError
    from etran.runtime.system import require_admin
    try:
        if admin():
            require_admin(verb)
        return handler(args)
    except DiagnosticError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_PROGRAM
    except VerifierError as exc:
        return _fail(f"{exc.summary()} (run `etran verify {getattr(args, 'file', 'FILE')} "
                     "--log` for the verifier's log)", EXIT_PROGRAM)
    except EtranRuntimeError as exc:
        return _fail(str(exc).splitlines()[0], EXIT_USAGE)
    except PermissionError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        return _fail(f"{verb} needs root: permission denied{where}; run as root",
                     EXIT_USAGE)
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}{': ' + exc.filename if exc.filename else ''}",
                     EXIT_USAGE)


# --------------------------------------------------------------------------- up

def cmd_up(args: argparse.Namespace) -> int:
    return _guarded("up", _up, args)


def _up(args: argparse.Namespace) -> int:
    from etran.cli.verifier_report import counts, estimate_of, verdict_lines
    from etran.dsl.diagnostics import DiagnosticSink, render
    from etran.pipeline import compile_file, compile_program, refine_budgets
    from etran.runtime.loader import LoadedObject, VerifierStats, load_object
    from etran.runtime.pinned import pin_native_egress
    from etran.runtime.system import check_kernel_support
    from etran.runtime.topology import Topology, parse_kind

    if not os.path.isfile(args.file):
        return _fail(f"{args.file}: no such file", EXIT_USAGE)
    names = parse_kind(args.topology)  # a bad kind is a usage error before anything is built
    links: list[tuple[str, str]] = []
    for spec in args.link:
        host, sep, path = spec.partition("=")
        if not sep or host not in names:
            return _fail(f"--link {spec}: write HOST=PROGRAM.py with HOST one of "
                         f"{', '.join(names)}", EXIT_USAGE)
        if not os.path.isfile(path):
            return _fail(f"--link {spec}: {path}: no such file", EXIT_USAGE)
        links.append((host, path))
    check_kernel_support()
    sink = DiagnosticSink()
    compiled = compile_file(args.file, budget_advisory=args.kernel_decides, sink=sink)
    refine_budgets(compiled)    # the estimates shown next to the kernel's counts
    warnings = [d for d in sink.sorted() if d.severity == "warning"]
    if warnings:
        print(render(warnings) + "\n  (--kernel-decides: loading anyway; the kernel "
              "verifier decides)", file=sys.stderr)
    ingress = [p.name for p in compiled.programs if p.hook == "xdp"]
    if len(ingress) > 1:
        return _fail(f"{args.file} has {len(ingress)} @xdp programs ({', '.join(ingress)}); "
                     "an interface runs one", EXIT_PROGRAM)
    link_objects = []
    for host, path in links:
        link_compiled = compile_file(path, budget_advisory=args.kernel_decides)
        hooks_there = [p.name for p in link_compiled.programs if p.hook == "xdp"]
        if len(hooks_there) != 1:
            return _fail(f"--link {host}={path}: a link program has exactly one @xdp hook; "
                         f"this one has {len(hooks_there)}", EXIT_PROGRAM)
        link_objects.append((host, path, link_compiled, hooks_there[0]))
    stem = os.path.splitext(os.path.basename(args.file))[0]
    # @egress built for the native path too, loaded on each host's maps and pinned beside
    # them, so that an application (`etran nc`, `etran rpc`) runs it without compiling
    egress = [p.name for p in compiled.programs if p.hook == "egress"]
    native_elf = compile_program(compiled.program, native_egress=True).elf if egress else None
    natives: list[tuple[str, LoadedObject]] = []
    topo = Topology(args.topology, source=os.path.abspath(args.file))
    try:
        first: LoadedObject | None = None
        for host in topo.hosts:
            obj = topo.own(load_object(compiled.elf, stem[:15]), host)
            first = first or obj
            if ingress:
                topo.attach(host, obj.programs[ingress[0]], args.mode)
            if native_elf is not None:
                natives.append((host, load_object(native_elf, f"{stem}_n"[:15],
                                                  reuse={n: m.fd for n, m in obj.maps.items()})))
        for host, path, link_compiled, hook in link_objects:
            link_stem = os.path.splitext(os.path.basename(path))[0]
            link_obj = topo.own(load_object(link_compiled.elf, link_stem[:15]), f"link-{host}")
            topo.set_link_program(host, link_obj.programs[hook], args.mode)
        hooks = {p.name: p.hook for p in compiled.programs}
        # every host loads the same object: the verifier's numbers are the first host's
        _print_up(topo, args.file, hooks,
                  verdict_lines(compiled.program, first) if first is not None else [])
        if args.hold:
            _hold(topo)
            return EXIT_OK
        pins = topo.persist()
        for host, native in natives:
            pin_native_egress(native, os.path.join(pins, host), egress)
    except VerifierError as exc:
        topo.close()
        known = counts(VerifierStats.parse(exc.log).processed_insns,
                       estimate_of(compiled.program, exc.program))
        return _fail(f"{exc.summary()}{'; ' + known if known else ''}; run `etran verify "
                     f"{args.file} --log` for the verifier's log", EXIT_PROGRAM)
    except BaseException:
        topo.close()
        raise
    finally:
        for _host, native in natives:
            native.close()
    transport = next((name for name, marker in (("tcp", "conns"), ("homa", "rpcs"))
                      if all(os.path.exists(os.path.join(pins, host, "maps", marker))
                             for host in topo.hosts)), None)
    if not args.no_daemon and transport is not None:
        failure = _start_daemons(topo.run_id, transport)
        if failure is not None:
            record = runs.find_run(topo.run_id)
            if record is not None:
                runs.remove_run(record)
            return _fail(f"{failure}; the run was taken down", EXIT_USAGE)
    print(f"  pinned under {pins}; stop it with `etran down` (or `etran down --run "
          f"{topo.run_id}`)")
    return EXIT_OK


DAEMON_START = 60.0     # seconds a host's daemon may take to load its stack and listen


def _start_daemons(run_id: str, transport: str) -> str | None:
    """One `transport` daemon per host (`etran hostd`, inside the host's namespace), each
    listed in the run's state file as soon as it is started (so `etran down` stops it
    whatever happens next); waits until each listens. Returns what went wrong, or None."""
    import subprocess

    import etran
    from etran.runtime import hostd
    record = runs.find_run(run_id)
    if record is None:
        return f"run {run_id} has no state file"
    os.makedirs(record.run_dir, mode=0o755, exist_ok=True)
    root = os.path.dirname(os.path.dirname(os.path.abspath(etran.__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
    procs = {}
    for host, info in record.hosts.items():
        with open(hostd.log_path(record, host, transport), "ab") as log:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", info["netns"], sys.executable, "-m", "etran", "hostd",
                 "--run", run_id, "--host", host, "--transport", transport],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                env=env)
        procs[host] = proc
        record.daemons.append({"host": host, "pid": proc.pid, "what": transport,
                               "pid_start": runs._start_time(proc.pid)})
        record.save()
    deadline = time.monotonic() + DAEMON_START
    for host, proc in procs.items():
        while not os.path.exists(hostd.socket_path(record, host, transport)):
            if proc.poll() is not None or time.monotonic() > deadline:
                with open(hostd.log_path(record, host, transport), encoding="utf-8",
                          errors="replace") as log:
                    said = [ln for ln in log.read().splitlines() if ln.strip()]
                why = f": {said[-1]}" if said else ""
                state = "stopped" if proc.poll() is not None else "did not listen in time"
                return f"the {transport} daemon of host {host} {state}{why}"
            time.sleep(0.02)
    names = ", ".join(f"{host} (pid {proc.pid})" for host, proc in procs.items())
    first = next(iter(record.hosts.values()))
    how = "etran nc ...`, `etran.tcp.connect(...)" if transport == "tcp" else \
        "etran rpc ...`, `etran.homa.app.client()"
    print(f"  {'TCP' if transport == 'tcp' else 'Homa'} daemons: {names}; "
          f"applications inside a host use them, as any user: `ip netns exec {first['netns']} "
          f"{how}`")
    return None


def _print_up(topo: Any, file: str, hooks: dict[str, str], verdicts: list[str]) -> None:
    print(f"etran: run {topo.run_id} is up: {topo.kind} running {file}")
    attached = {key: link for key, link in topo.links.items() if not key.startswith("link:")}
    for host in topo.hosts.values():
        link = attached.get(host.name)
        where = f"@xdp {link.program} ({link.mode})" if link else "no @xdp program"
        print(f"  host {host.name:<4} netns {host.netns:<20} {host.ifname} {host.ip:<12} "
              f"{host.mac}  {where}")
    for key, link in topo.links.items():
        if key.startswith("link:") and link.program != "etran_pass":
            host = key.removeprefix("link:")
            print(f"  link to {host}: @xdp {link.program} on {topo.port(host).name} "
                  f"(what {host} sends); its maps are pinned under link-{host}/maps")
    for line in verdicts:
        print(line)
    others = [f"@{hook} {name}" for name, hook in hooks.items() if hook != "xdp"]
    if others:
        print(f"  loaded, run by the runtime on demand: {', '.join(others)}")
    print(f"  switch: netns {topo.switch} (bridge etran-br); enter a host with "
          f"`ip netns exec {next(iter(topo.hosts.values())).netns} bash`")


def _hold(topo: Any) -> None:
    """Block until SIGINT/SIGTERM, then tear down (the caller's ``finally`` does not run for
    a persisted run, so this closes the topology itself)."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print("  holding; Ctrl-C or SIGTERM tears it down")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        topo.close()
    print(f"etran: run {topo.run_id} torn down")


# --------------------------------------------------------------------------- status

def cmd_status(args: argparse.Namespace) -> int:
    return _guarded("status", _status, args)


def _status(args: argparse.Namespace) -> int:
    records = runs.list_runs()
    known = {r.run_id for r in records}
    for record in records:
        _print_run(record, args.entries)
    leftovers = runs.find_objects()
    stray = runs.Leftovers(
        [n for n in leftovers.namespaces if runs.run_id_of(n) not in known],
        leftovers.links,
        [p for p in leftovers.pins if os.path.basename(p) not in known])
    if stray:
        print("leftovers no run accounts for (remove them with `etran down`):")
        for kind, names in (("namespace", stray.namespaces), ("link", stray.links),
                            ("pins", stray.pins)):
            for name in names:
                print(f"  {kind} {name}")
    if not records and not stray:
        print("etran: nothing is running")
    return EXIT_OK


def _print_run(record: runs.RunRecord, entries: int) -> None:
    if record.persistent:
        owner = "detached (etran up)"
    elif record.owner_alive():
        owner = f"held by process {record.pid}"
    else:
        owner = f"ORPHANED: process {record.pid} died; `etran down` removes it"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
    source = f" running {record.source}" if record.source else ""
    print(f"run {record.run_id}: {record.kind}{source}, since {since}, {owner}")
    declarations: dict[str, Any] | None = None
    for name, host in record.hosts.items():
        counters = _counters(host["netns"], host["ifname"])
        programs = _programs(host["netns"]).get(host["ifname"], "no XDP program")
        print(f"  host {name:<4} {host['netns']:<20} {host['ifname']} {host['ip']:<12} "
              f"{programs}; {counters}")
        for daemon in (d for d in record.daemons if d["host"] == name):
            alive = runs._start_time(daemon["pid"]) == daemon["pid_start"]
            kind = {"tcp": "TCP", "homa": "Homa"}.get(daemon["what"], daemon["what"])
            print(f"    {kind} daemon: pid {daemon['pid']}, "
                  f"{'serving' if alive else 'NOT RUNNING (see its log in ' + record.run_dir + ')'}")
        map_dir = os.path.join(record.pin_dir, name, "maps")
        if os.path.isdir(map_dir):
            if declarations is None:
                declarations = _declarations(record.source)
            names = sorted(os.listdir(map_dir))
            for map_name in names:
                _print_map(os.path.join(map_dir, map_name), entries,
                           declarations.get(map_name))
            if {"rpcs", "cands"} <= set(names) and "rpcs" in declarations:
                _print_homa_rpcs(os.path.join(map_dir, "rpcs"), declarations["rpcs"])
            if {"conns", "reads"} <= set(names) and "conns" in declarations:
                _print_tcp_connections(os.path.join(map_dir, "conns"), declarations["conns"])


def _declarations(source: str) -> dict[str, Any]:
    """The run's maps as its source declares them (name -> MapType), so their entries show
    as the transport's own structs; {} (entries shown as bytes) when the source cannot be
    read or checked any more, with a line saying why."""
    from etran.dsl.diagnostics import DiagnosticError
    from etran.runtime.typed import program_of
    if not source:
        return {}
    try:
        return {m.name: m for m in program_of(source).maps}
    except OSError as exc:
        why = f"cannot read {source} ({exc.strerror or exc})"
    except DiagnosticError:
        why = f"{source} no longer checks"
    print(f"  ({why}: map entries shown as bytes)")
    return {}


def _counters(namespace: str, ifname: str) -> str:
    try:
        with netns.netlink(namespace) as ipr:
            link = ipr.link("get", ifname=ifname)[0]
            stats = link.get_attr("IFLA_STATS64")
    except Exception:  # the namespace may be going away while we look
        return "counters unavailable"
    return (f"rx {stats['rx_packets']} pkts, tx {stats['tx_packets']} pkts, "
            f"dropped rx {stats['rx_dropped']} tx {stats['tx_dropped']}")


def _programs(namespace: str) -> dict[str, str]:
    from etran.runtime import attach
    try:
        ids = attach.attached_program_ids(namespace)
    except Exception:
        return {}
    return {ifname: f"XDP prog id {prog_id}" for ifname, prog_id in ids.items()}


def _print_map(path: str, entries: int, declaration: Any = None) -> None:
    """One pinned map: kind and size, then its first ``entries`` entries (non-zero ones for
    arrays), decoded through ``declaration`` (the DSL's MapType) when it still fits the map."""
    from etran.ir.codec import format_value
    from etran.runtime.maps import Map
    from etran.runtime.typed import TypedMap
    try:
        with Map.from_pinned(path) as map_:
            kind = MAP_TYPE_NAMES.get(map_.map_type, str(map_.map_type))
            if map_.map_type == RINGBUF_MAP_TYPE:  # max_entries is its size in bytes
                print(f"    map {os.path.basename(path)} ({kind}, {map_.max_entries} bytes)")
                return
            if map_.map_type not in LISTABLE_MAP_TYPES:
                print(f"    map {os.path.basename(path)} ({kind}, max {map_.max_entries} entries)")
                return
            typed, note = None, ""
            if declaration is not None:
                try:
                    typed = TypedMap(map_, declaration, pretty=True)
                except EtranRuntimeError:
                    note = "; not as declared in the source now, shown as bytes"
            shown: list[str] = []
            total = 0
            for key, value in map_.items():
                total += 1
                if len(shown) < entries and (map_.map_type not in (2, 6) or any(value)):
                    if typed is not None:
                        shown.append(f"{format_value(typed.decode_key(key))}: "
                                     f"{format_value(typed.decode_value(value))}")
                    else:
                        shown.append(f"{key.hex()}: {value.hex()}")
            print(f"    map {os.path.basename(path)} ({kind}, {total} entries{note})"
                  + "".join(f"\n      {line}" for line in shown))
    except EtranRuntimeError as exc:
        print(f"    map {os.path.basename(path)}: {exc}")


def _print_homa_rpcs(path: str, declaration: Any) -> None:
    """A host running Homa: every RPC in its data path, one line each."""
    from etran.homa.status import rpc_line
    _print_entries(path, declaration, "Homa RPCs", " active", rpc_line)


def _print_tcp_connections(path: str, declaration: Any) -> None:
    """A host running etran's TCP: every connection in its data path, one line each."""
    from etran.tcp.status import FIELDS, conn_line
    if {f.name for f in getattr(declaration.value, "fields", ())} >= FIELDS:
        _print_entries(path, declaration, "TCP connections", "", conn_line)
    # else: a map of another transport that happens to have these names


def _print_entries(path: str, declaration: Any, title: str, count_word: str,
                   line: Callable[[dict[str, Any], dict[str, Any]], str]) -> None:
    """`title`: how many entries the pinned map at `path` holds, then `line` of each."""
    from etran.runtime.maps import Map
    from etran.runtime.typed import TypedMap
    try:
        with Map.from_pinned(path) as map_:
            entries = list(TypedMap(map_, declaration).items())
    except EtranRuntimeError as exc:
        print(f"    {title}: {exc}")
        return
    print(f"    {title}: {len(entries)}{count_word}"
          + "".join(f"\n      {line(k, v)}" for k, v in entries
                    if isinstance(k, dict) and isinstance(v, dict)))


# --------------------------------------------------------------------------- down

def cmd_down(args: argparse.Namespace) -> int:
    return _guarded("down", _down, args)


def _down(args: argparse.Namespace) -> int:
    if args.run:
        record = runs.find_run(args.run)
        found = runs.find_objects(args.run)
        if record is None and not found:
            return _fail(f"no run {args.run}; `etran status` lists the runs", EXIT_USAGE)
        problems = runs.remove_run(record) if record else []
        for name in found.namespaces:
            netns.remove(name)
        for pin_dir in found.pins:
            problems += runs.remove_pins(pin_dir)
        if problems:
            return _fail(f"tear down run {args.run}: {'; '.join(problems)}", EXIT_USAGE)
        left = runs.find_objects(args.run)
        removed = [f"run {args.run}"]
    else:
        removed = runs.teardown_all(orphans_only=args.orphans)
        left = runs.Leftovers() if args.orphans else runs.find_objects()
    if left:
        return _fail(f"still present after teardown: {left}", EXIT_USAGE)
    print(f"etran: removed {', '.join(removed)}" if removed else "etran: nothing to remove")
    return EXIT_OK


__all__ = ["add_runtime_commands", "cmd_down", "cmd_status", "cmd_up"]

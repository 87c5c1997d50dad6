"""`etran hostd`: the daemon of one host of a run (`etran up` starts one per host for
etran's TCP and Homa; etran.runtime.hostd says why). Without `--worker` it supervises the
daemon proper, a child it starts again when it dies.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from etran.runtime import runs


def add_hostd(subparsers: Any, guarded: Any) -> None:
    hostd = subparsers.add_parser(
        "hostd", help="the daemon of one host of a run, TCP's or Homa's (`etran up` starts it)")
    hostd.add_argument("--run", required=True, metavar="ID")
    hostd.add_argument("--host", required=True, metavar="NAME")
    hostd.add_argument("--transport", choices=["homa", "tcp"], default="tcp")
    hostd.add_argument("--worker", action="store_true",
                       help="be the daemon itself (without: supervise one, restarting it)")
    hostd.set_defaults(func=lambda args: guarded("hostd", _hostd, args))


def _hostd(args: argparse.Namespace) -> int:
    from etran.runtime import hostd
    record = runs.find_run(args.run)
    if record is None or args.host not in record.hosts:
        print(f"etran hostd: no host {args.host} in a run {args.run}", file=sys.stderr)
        return 2
    if not args.worker:
        return hostd.supervise([sys.executable, "-m", "etran", "hostd", "--run", args.run,
                                "--host", args.host, "--transport", args.transport,
                                "--worker"], f"the {args.transport} daemon of host {args.host}")
    daemon: Any
    if args.transport == "tcp":
        from etran.tcp.hostd import TcpDaemon
        daemon = TcpDaemon(record, args.host)
    else:
        from etran.homa.hostd import HomaDaemon
        daemon = HomaDaemon(record, args.host)
    hostd.run_daemon(daemon)
    return 0

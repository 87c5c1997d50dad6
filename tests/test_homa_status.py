"""`etran status`'s line for a Homa RPC (`etran.homa.status.rpc_line`), and what that and
the applications' modules import."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from etran.homa.status import rpc_line

KEY = {"id": 0x1235, "peer": 0x0A6F0002, "local_port": 4000, "peer_port": 50001}


def rpc(**changes: int) -> dict[str, Any]:
    r = {"state": 3, "out_length": 0, "granted": 0, "sent": 0, "in_length": 300_000,
         "received": 120_400, "in_granted": 160_000, "resends": 0, "busy": 0, "armed": 1}
    r.update(changes)
    return r


def test_an_rpc_is_one_line_of_its_messages() -> None:
    assert rpc_line(KEY, rpc()) == (
        "rpc 0x1234 10.111.0.2:50001 port 4000: server receiving; in 120,400/300,000 "
        "received, 160,000 granted, 179,600 remaining")


def test_what_is_unusual_is_said() -> None:
    line = rpc_line(KEY, rpc(state=1, out_length=200_000, sent=60_000, granted=60_000,
                             in_length=0, resends=2, busy=2, armed=0))
    assert line == (
        "rpc 0x1234 10.111.0.2:50001 port 4000: client sending; out 60,000/200,000 sent, "
        "60,000 granted; 2 resends; server busy 2x (asked every 60 ms); no timer yet (the "
        "kernel could not start it; the next packet tries)")


def test_applications_and_status_load_no_data_path_code() -> None:
    """An application of a host's daemon (`etran.homa.app`, `etran.tcp.app`) and `etran
    status`'s Homa lines need no stack: the package imports it only when asked for."""
    probe = ("import sys, etran.homa.app, etran.homa.status, etran.tcp.app\n"
             "print(' '.join(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], check=True)
    loaded = set(done.stdout.split())
    assert "etran.homa.app" in loaded and "etran.homa.wire" in loaded
    heavy = {"etran.homa.stack", "etran.tcp.stack", "etran.runtime.libbpf", "llvmlite",
             "etran.pipeline"}
    assert loaded & heavy == set()

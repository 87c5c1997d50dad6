"""The runtime: load compiled BPF objects into the running kernel and talk to them.

Only :mod:`etran.runtime.libbpf` makes foreign calls; everything here deals in ints and bytes.
"""

from etran.runtime.errors import BpfError, EtranRuntimeError, NotSupported, VerifierError
from etran.runtime.loader import (
                                  LoadedObject,
                                  Map,
                                  Program,
                                  RingBufferReader,
                                  TestRunResult,
                                  VerifierStats,
                                  XdpContext,
                                  check_kernel_support,
                                  ensure_bpffs,
                                  get_pinned,
                                  load_object,
                                  pin,
                                  possible_cpus,
)

__all__ = [
    "BpfError", "EtranRuntimeError", "LoadedObject", "Map",
    "NotSupported", "Program", "RingBufferReader", "TestRunResult", "VerifierError",
    "VerifierStats", "XdpContext", "check_kernel_support", "ensure_bpffs", "get_pinned",
    "load_object", "pin", "possible_cpus",
]

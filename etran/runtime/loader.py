"""Load a BPF ELF object into the running kernel and talk to its programs and maps.

``load_object`` hands the object to libbpf (relocations, BTF-defined maps, func/line info),
captures each program's verifier log in our own buffer, and returns a :class:`LoadedObject`
that owns every file descriptor: closing it (or leaving its ``with`` block) frees them all.
A rejected program becomes a :class:`~etran.runtime.errors.VerifierError` carrying the whole
log; a failure before the verifier (bad ELF, BTF, map creation) becomes a
:class:`~etran.runtime.errors.BpfError` carrying libbpf's messages. Either way nothing leaks.

Only :mod:`etran.runtime.libbpf` makes foreign calls; this module deals in ints and bytes.
Maps and ring buffers live in :mod:`etran.runtime.maps`, machine-level helpers (support probe,
CPU count, bpffs, pins) in :mod:`etran.runtime.system`; both are re-exported here.
"""

from __future__ import annotations

import contextlib
import errno
import re
import signal
import struct
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType

from etran.abi import PROG_TYPE_XDP, XDP_MD
from etran.runtime import libbpf as lb
from etran.runtime.errors import BpfError, EtranRuntimeError, VerifierError
from etran.runtime.maps import Map, RingBufferReader
from etran.runtime.system import check_kernel_support, doing, ensure_bpffs, get_pinned, pin, possible_cpus

LOG_LEVEL_ERROR_PATH, LOG_LEVEL_EVERY_INSN, LOG_LEVEL_STATS = 1, 2, 4
DEFAULT_LOG_LEVEL = LOG_LEVEL_ERROR_PATH | LOG_LEVEL_STATS
DEFAULT_LOG_SIZE = 1 << 20
MAX_LOG_SIZE = 256 << 20  # the kernel accepts up to UINT_MAX >> 2




# --------------------------------------------------------------------------- plain data

@dataclass(frozen=True, slots=True)
class VerifierStats:
    """Numbers the verifier prints at log level 4 (and the ``processed`` line at level 1)."""

    processed_insns: int = 0
    total_states: int = 0
    peak_states: int = 0
    max_states_per_insn: int = 0
    mark_read: int = 0
    stack_depth: list[int] = field(default_factory=list)  # one per frame: "stack depth 8+16"
    verification_time_us: int = 0

    @classmethod
    def parse(cls, log: str) -> VerifierStats:
        processed = re.search(r"processed (\d+) insns \(limit \d+\) max_states_per_insn (\d+) "
                              r"total_states (\d+) peak_states (\d+) mark_read (\d+)", log)
        depth = re.search(r"^stack depth ([\d+]+)\s*$", log, re.MULTILINE)
        time = re.search(r"^verification time (\d+) usec", log, re.MULTILINE)
        insns, per_insn, total, peak, mark = (int(g) for g in processed.groups()) if processed \
            else (0, 0, 0, 0, 0)
        return cls(
            processed_insns=insns, total_states=total, peak_states=peak,
            max_states_per_insn=per_insn, mark_read=mark,
            stack_depth=[int(part) for part in depth.group(1).split("+") if part] if depth else [],
            verification_time_us=int(time.group(1)) if time else 0)


@dataclass(frozen=True, slots=True)
class XdpContext:
    """``struct xdp_md`` for a test run.

    The kernel insists on: ``data`` = length of metadata at the front of the input (a multiple
    of 4, at most 32), ``data_end`` = the input length (None fills it in), ``data_meta`` = 0,
    ``egress_ifindex`` = 0, and ``rx_queue_index`` below the ingress device's queue count
    (``ingress_ifindex`` = 0 means none, and then the queue must be 0). Loopback (ifindex 1)
    exists in every network namespace, hence the default.
    """

    data: int = 0
    data_end: int | None = None
    data_meta: int = 0
    ingress_ifindex: int = 1
    rx_queue_index: int = 0
    egress_ifindex: int = 0

    def pack(self, input_length: int) -> bytes:
        data_end = input_length if self.data_end is None else self.data_end
        return XDP_MD.pack(self.data, data_end, self.data_meta, self.ingress_ifindex,
                            self.rx_queue_index, self.egress_ifindex)

    @classmethod
    def unpack(cls, raw: bytes) -> XdpContext:
        return cls(*XDP_MD.unpack(raw.ljust(XDP_MD.size, b"\0")[:XDP_MD.size]))


@dataclass(frozen=True, slots=True)
class TestRunResult:
    """What BPF_PROG_TEST_RUN reports: the verdict, the packet as it leaves (with its new
    length), the mean run time per repetition, and the context as it leaves if one was given."""

    __test__ = False  # not a pytest test class

    retval: int
    data: bytes
    duration_ns: int
    ctx: XdpContext | None = None


# --------------------------------------------------------------------------- programs

# What bpf_prog_test_run_xdp() checks (net/bpf/test_run.c), measured on 6.18.
_XDP_TEST_RUN_RULES = (
    "XDP test runs need: at least 14 bytes of input (an Ethernet header);",
    "ctx.data = metadata length (a multiple of 4, at most 32), ctx.data_end = input length,",
    "ctx.data_meta = 0, ctx.egress_ifindex = 0, and ctx.rx_queue_index below the ingress",
    "device's rx queue count (loopback has one; ingress_ifindex 0 requires queue 0).",
)


class Program:
    """A loaded program; its fd belongs to the :class:`LoadedObject` it came from."""

    def __init__(self, name: str, section: str, prog_type: int, fd: int,
                 verifier_log: str) -> None:
        self.name = name
        self.section = section
        self.prog_type = prog_type
        self._fd = fd
        self.verifier_log = verifier_log
        self.stats = VerifierStats.parse(verifier_log)

    @property
    def fd(self) -> int:
        if self._fd < 0:
            raise EtranRuntimeError(f"use program {self.name!r}", "its object is closed")
        return self._fd

    def _detach(self) -> None:
        self._fd = -1

    def __repr__(self) -> str:
        return f"Program({self.name!r}, section={self.section!r}, fd={self._fd})"

    def _info(self) -> bytes:
        with doing(f"describe program {self.name!r}"):
            return lb.obj_get_info(self.fd)

    def xlated_insn_count(self) -> int:
        """Instructions after the verifier's rewrites (``bpf_prog_info.xlated_prog_len / 8``)."""
        return int(struct.unpack_from("<I", self._info(), 20)[0]) // 8

    def jited_size(self) -> int:
        """Bytes of JIT-compiled machine code (``bpf_prog_info.jited_prog_len``)."""
        return int(struct.unpack_from("<I", self._info(), 16)[0])

    def pin(self, path: str) -> None:
        pin(self.fd, path)

    def test_run(self, data: bytes, *, ctx: XdpContext | None = None, repeat: int = 1,
                 flags: int = 0, cpu: int = 0, data_out_size: int | None = None,
                 ) -> TestRunResult:
        """Run the program on ``data`` in the kernel (BPF_PROG_TEST_RUN).

        Without ``ctx`` the kernel runs XDP as if the packet arrived on loopback, queue 0.
        The output buffer defaults to ``len(data) + 4096`` so head and tail growth fit; the
        returned ``data`` is exactly what the kernel reports. With ``repeat > 1`` the kernel
        does not reset the packet between repetitions, so head/tail adjustments accumulate;
        ``duration_ns`` is the mean per repetition.
        """
        action = f"run program {self.name!r}"
        if ctx is not None and self.prog_type != PROG_TYPE_XDP:
            raise EtranRuntimeError(action, "an XdpContext only fits XDP programs")
        out_size = len(data) + 4096 if data_out_size is None else data_out_size
        ctx_in = ctx.pack(len(data)) if ctx is not None else None
        ctx_out_size = XDP_MD.size if ctx is not None else 0
        try:
            out = lb.prog_test_run(self.fd, bytes(data), out_size, ctx_in, ctx_out_size,
                                   repeat, flags, cpu, 0)
        except OSError as exc:
            hints = _XDP_TEST_RUN_RULES if exc.errno == errno.EINVAL and \
                self.prog_type == PROG_TYPE_XDP else ()
            raise BpfError(action, exc.errno or 0, hints) from exc
        return TestRunResult(out.retval, out.data, out.duration_ns,
                             XdpContext.unpack(out.ctx) if out.ctx else None)


# --------------------------------------------------------------------------- objects

class LoadedObject:
    """Programs and maps of one object, loaded; owns their fds until :meth:`close`."""

    def __init__(self, name: str, handle: lb.ObjectHandle, programs: dict[str, Program],
                 maps: dict[str, Map], internal_maps: dict[str, Map]) -> None:
        self.name = name
        self.programs = programs
        self.maps = maps
        self.internal_maps = internal_maps  # {".bss": Map, ".rodata": ...}: global data, if any
        self._handle = handle
        self._finalizer = weakref.finalize(self, lb.object_close, handle)

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def close(self) -> None:
        """Close every program and map fd (idempotent)."""
        if self._finalizer.alive:
            for program in self.programs.values():
                program._detach()
            for map_ in (*self.maps.values(), *self.internal_maps.values()):
                map_._detach()
            self._finalizer()

    def __enter__(self) -> LoadedObject:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "loaded"
        return (f"LoadedObject({self.name!r}, {state}, programs={list(self.programs)}, "
                f"maps={list(self.maps)})")


STATS_LOG_LEVEL = 4
# The statistics are a line or two: a 1 MiB buffer per program (zeroed by ctypes) cost
# 0.2 ms each at every load. A log that overflows this is loaded again with a bigger one.
STATS_LOG_SIZE = 16 << 10


def load_object(elf: bytes, name: str = "etran", log_level: int = DEFAULT_LOG_LEVEL, *,
                log_size: int = DEFAULT_LOG_SIZE,
                reuse: Mapping[str, int] | None = None) -> LoadedObject:
    """Load every program and map of the BPF ELF object ``elf`` into the kernel.

    ``reuse`` maps names of the object's maps to fds of maps already loaded (a run's pinned
    maps): those are used instead of new ones, so the programs share their state (libbpf
    refuses a map whose type, sizes or flags differ).

    ``log_level`` 5 (= 1|4) records statistics on success and the path to the error on
    failure. Each program gets a ``log_size`` log buffer; when the kernel reports ENOSPC
    because a log did not fit, the object is loaded again with that program's buffer four
    times bigger, up to 256 MiB.
    """
    if log_level == DEFAULT_LOG_LEVEL:
        # Statistics alone keep the log small for big programs; only a rejection needs the
        # level-1 path to the error, so load again for it then.
        try:
            return _load(elf, name, STATS_LOG_LEVEL, min(log_size, STATS_LOG_SIZE), reuse)
        except VerifierError:
            pass
    return _load(elf, name, log_level, log_size, reuse)


def _load(elf: bytes, name: str, log_level: int, log_size: int,
          reuse: Mapping[str, int] | None = None) -> LoadedObject:
    sizes: dict[str, int] = {}
    while True:
        attempt = _load_once(elf, name, log_level, log_size, sizes, reuse or {})
        if isinstance(attempt, LoadedObject):
            return attempt
        overflowed = [prog for prog, size in attempt.items() if size < MAX_LOG_SIZE]
        if not overflowed:
            raise AssertionError("unreachable: retry without a log to grow")
        for prog in overflowed:
            sizes[prog] = min(sizes.get(prog, log_size) * 4, MAX_LOG_SIZE)


def _load_once(elf: bytes, name: str, log_level: int, log_size: int,
               sizes: dict[str, int], reuse: Mapping[str, int]) -> LoadedObject | dict[str, int]:
    """One open+load. Returns the object, or {program: log size} of logs to grow and retry."""
    action = f"load object {name!r}"
    with lb.capture_messages() as messages:
        try:
            handle = lb.open_object(elf, name)
        except OSError as exc:
            raise BpfError(f"open object {name!r}", exc.errno or 0, _warnings(messages)) from exc
        try:
            if reuse:
                for map_ in lb.object_maps(handle):
                    fd = reuse.get(lb.describe_map(map_).name)
                    if fd is not None:
                        lb.map_reuse_fd(map_, fd)
            logs: dict[str, tuple[int, lb.LogBuffer]] = {}
            for prog in lb.object_programs(handle):
                prog_name = lb.program_name(prog)
                buf = lb.LogBuffer(sizes.get(prog_name, log_size))  # read by the kernel in load
                lb.program_set_log(prog, buf, log_level)
                logs[prog_name] = (prog, buf)
            with _signals_held():
                err = -lb.object_load(handle)
            if err == 0:
                return _wrap(name, handle, logs)
        except OSError as exc:
            lb.object_close(handle)
            raise BpfError(action, exc.errno or 0, _warnings(messages)) from exc
        except BaseException:
            lb.object_close(handle)
            raise
    # Failed: libbpf already closed the fds it had opened; read the logs, then free the rest.
    texts = {prog_name: buf.text() for prog_name, (_prog, buf) in logs.items()}
    full = {prog_name: buf.size for prog_name, (_prog, buf) in logs.items() if buf.is_full()}
    lb.object_close(handle)
    if err == errno.ENOSPC and not full and log_level:
        # Since 6.4 the kernel's verifier log rotates: an overflowing log need not look
        # full (it may even read as empty), so grow every program's log.
        full = {prog_name: buf.size for prog_name, (_prog, buf) in logs.items()}
    if err == errno.ENOSPC and any(size < MAX_LOG_SIZE for size in full.values()):
        return full
    if err == errno.EAGAIN:
        # the verifier gives up on a signal (libbpf tries five times); with all but the
        # signals below held, one of those came: the user wants the process to stop
        raise BpfError(action, err, ["the kernel's verifier stopped: this process received "
                                     "a signal while the kernel was checking a program"])
    failing = _failing_program(messages, texts)
    if failing is not None and texts[failing].strip():
        raise VerifierError(failing, texts[failing], err, truncated=failing in full)
    raise BpfError(action, err, _warnings(messages))


# Signals that still interrupt a load: the ones that ask the process to stop.
_LET_THROUGH = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT}


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold this thread's other signals while the kernel verifies a program. The verifier
    stops with EAGAIN whenever the loading thread has a signal pending, so a process that
    receives signals often (an interval timer, a sampling profiler, SIGCHLD from its
    children) could not load a large program at all; held signals arrive afterwards."""
    held = signal.valid_signals() - _LET_THROUGH
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _wrap(name: str, handle: lb.ObjectHandle,
          logs: dict[str, tuple[int, lb.LogBuffer]]) -> LoadedObject:
    programs = {
        prog_name: Program(prog_name, lb.program_section(prog), lb.program_type(prog),
                           lb.program_fd(prog), buf.text())
        for prog_name, (prog, buf) in logs.items()}
    maps: dict[str, Map] = {}
    internal: dict[str, Map] = {}
    for map_ in lb.object_maps(handle):
        d = lb.describe_map(map_)
        if d.fd < 0:  # not created (autocreate off)
            continue
        wrapped = Map(d.name, d.fd, d.map_type, d.key_size, d.value_size, d.max_entries,
                      d.flags, owns_fd=False)
        if d.internal:  # named "<object prefix>.bss" and so on: key them by section
            internal["." + d.name.split(".", 1)[1] if "." in d.name else d.name] = wrapped
        else:
            maps[d.name] = wrapped
    return LoadedObject(name, handle, programs, maps, internal)


_FAILED_PROGRAM = re.compile(r"prog '([^']+)': (?:BPF program load failed|failed to load)")


def _failing_program(messages: list[lb.Message], logs: dict[str, str]) -> str | None:
    """The program the kernel rejected: libbpf names it; failing that, the last non-empty log
    (libbpf loads programs in order and stops at the first failure)."""
    for message in messages:
        match = _FAILED_PROGRAM.search(message.text)
        if match and match.group(1) in logs:
            return match.group(1)
    nonempty = [prog for prog, text in logs.items() if text.strip()]
    return nonempty[-1] if nonempty else None


def _warnings(messages: list[lb.Message]) -> list[str]:
    """libbpf's warnings (its debug chatter is in the ``etran.runtime.libbpf`` logger)."""
    return [m.text for m in messages if m.level == lb.LEVEL_WARN]


__all__ = [
    "DEFAULT_LOG_LEVEL", "LoadedObject", "Map", "Program",
    "RingBufferReader", "TestRunResult", "VerifierStats", "XdpContext", "check_kernel_support",
    "ensure_bpffs", "get_pinned", "load_object", "pin", "possible_cpus",
]

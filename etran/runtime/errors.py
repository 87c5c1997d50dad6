"""Errors raised by the runtime: what failed (a verb phrase), why, and what to do about it.

Every failure that reaches a caller is one of these classes, never a bare ``OSError`` from the
foreign layer: ``BpfError`` turns an errno into advice, ``VerifierError`` keeps the whole
verifier log but prints one line, and ``NotSupported`` names the missing feature so that tests
can skip on it (and on nothing else).
"""

from __future__ import annotations

import errno as errno_codes
import os
import re
from collections.abc import Sequence

ENOTSUPP = 524  # kernel-internal "operation not supported", leaks out of bpf(2)

_ADVICE: dict[int, str] = {
    errno_codes.EPERM: "needs root, or CAP_BPF plus CAP_NET_ADMIN (CAP_PERFMON for some "
                       "helpers); run as root or grant the capabilities",
    errno_codes.EACCES: "permission denied by the kernel (a verifier rejection, or a "
                        "capability/LSM policy); run as root",
    errno_codes.E2BIG: "something is too large: a key/value/attr size, a full map or queue, or "
                       "a program over the verifier's complexity limit",
    errno_codes.ENOSPC: "out of space: the verifier log buffer was too small (use a bigger "
                        "one) or a map/ring is full",
    errno_codes.EINVAL: "the kernel rejected an argument: check key/value sizes, flags, the "
                        "ELF section name (it selects the program type) and any test_run ctx",
    errno_codes.ENOENT: "no such element or object (missing key, pinned path or BTF)",
    errno_codes.EEXIST: "it already exists (BPF_NOEXIST, or a path that is already pinned)",
    errno_codes.EBADF: "the file descriptor is not open (was the object closed?)",
    errno_codes.ENOMEM: "out of memory: lower max_entries or raise the memory cgroup limit",
    errno_codes.ENODEV: "no such network device (ifindex) in this network namespace",
    errno_codes.EFAULT: "the kernel could not read an argument (a bug in etran's runtime)",
    errno_codes.ENOSYS: "this kernel has no bpf(2) (CONFIG_BPF_SYSCALL is off, or a seccomp "
                        "filter blocks it)",
    errno_codes.EOPNOTSUPP: "this kernel does not support the operation for this map or "
                            "program type",
    ENOTSUPP: "this kernel does not support the operation for this map or program type",
    errno_codes.EBUSY: "the resource is busy (already attached or bound)",
    errno_codes.EAGAIN: ("try again: the kernel ran out of a transient resource, or a signal "
                         "interrupted the call"),
}


# libbpf's own error codes (enum libbpf_errno, starting at 4000): name, meaning, advice
_LIBBPF_ERRNOS: dict[int, tuple[str, str, str]] = {
    4000: ("LIBBPF_ERRNO__LIBELF", "libelf failed", ""),
    4001: ("LIBBPF_ERRNO__FORMAT", "invalid BPF object format",
           "the bytes are not a BPF ELF object (little-endian, EM_BPF); check the compiler output"),
    4002: ("LIBBPF_ERRNO__KVERSION", "incorrect or missing kernel version section", ""),
    4003: ("LIBBPF_ERRNO__ENDIAN", "the object's endianness does not match the host",
           "compile for bpfel"),
    4004: ("LIBBPF_ERRNO__INTERNAL", "libbpf internal error", ""),
    4005: ("LIBBPF_ERRNO__RELOC", "relocation failed", "check the object's map and call "
           "relocations (libbpf's messages say which)"),
    4006: ("LIBBPF_ERRNO__LOAD", "loading the program failed", ""),
    4007: ("LIBBPF_ERRNO__VERIFY", "the kernel verifier rejected the program", ""),
    4008: ("LIBBPF_ERRNO__PROG2BIG", "the program is too big", ""),
    4009: ("LIBBPF_ERRNO__KVER", "incorrect kernel version", ""),
    4010: ("LIBBPF_ERRNO__PROGTYPE", "the kernel does not support this program type", ""),
}


def errno_name(err: int) -> str:
    if err == ENOTSUPP:
        return "ENOTSUPP"
    if err in _LIBBPF_ERRNOS:
        return _LIBBPF_ERRNOS[err][0]
    return errno_codes.errorcode.get(err, f"errno {err}")


def strerror(err: int) -> str:
    if err in _LIBBPF_ERRNOS:
        return _LIBBPF_ERRNOS[err][1]
    if err == ENOTSUPP:
        return "Operation not supported"
    return os.strerror(err)


def advice_for(err: int) -> str:
    if err in _LIBBPF_ERRNOS:
        return _LIBBPF_ERRNOS[err][2]
    return _ADVICE.get(err, "")


class EtranRuntimeError(Exception):
    """Base class; ``str()`` reads ``"<verb phrase>: <what went wrong>"``."""

    def __init__(self, action: str, detail: str) -> None:
        self.action = action
        self.detail = detail
        super().__init__(f"{action}: {detail}")


class NotSupported(EtranRuntimeError):
    """The machine lacks a feature etran needs; ``feature`` names it."""

    def __init__(self, feature: str, advice: str, action: str = "check kernel support") -> None:
        self.feature = feature
        self.advice = advice
        super().__init__(action, f"{feature} is not available: {advice}")


class BpfError(EtranRuntimeError):
    """A bpf(2)/libbpf call failed with ``errno``; ``details`` keeps the evidence (libbpf's own
    warnings, or what the kernel expects), one line each."""

    def __init__(self, action: str, errno: int, details: Sequence[str] = ()) -> None:
        self.errno = errno
        self.details = list(details)
        advice = advice_for(errno)
        detail = f"{strerror(errno)} ({errno_name(errno)})" + (f"; {advice}" if advice else "")
        if self.details:
            detail += "\n" + "\n".join(f"  {line}" for line in self.details)
        super().__init__(action, detail)


# Lines that frame a verifier log but are not the error itself.
_STATS = re.compile(r"^(processed \d+ insns|verification time|stack depth|max_states_per_insn)")
_INSN = re.compile(r"^\d+: ")  # "12: (69) r1 = ..." or "12: R1=..." (a state line)
_HINT = re.compile(r"^R\d+ ")  # "R1 offset is outside of the packet" explains the line above
# "infinite loop detected at insn 7" is followed by the two states found equal
_STATES = re.compile(r"^(cur|old) state: ")


def error_lines(log: str) -> tuple[str, str]:
    """(the verifier's error line, an explanatory follow-up line or ""), read from the end
    of its log (`VerifierError`, `etran.cli.verifier_report`)."""
    lines = [line.rstrip() for line in log.splitlines()]
    lines = [line for line in lines if line.strip()]
    while lines and (_STATS.match(lines[-1]) or _STATES.match(lines[-1])):
        lines.pop()
    if not lines:
        return "", ""
    last = lines[-1]
    if _HINT.match(last) and len(lines) >= 2:
        previous = lines[-2]
        if not _INSN.match(previous) and not previous.startswith(";"):
            return previous, last
    return last, ""


class VerifierError(EtranRuntimeError):
    """The kernel's verifier rejected ``program``; ``log`` is the verifier's whole log.

    ``str()`` is the one-line :meth:`summary`; use :meth:`tail` or ``log`` for the evidence.
    """

    def __init__(self, program: str, log: str, errno: int, truncated: bool = False) -> None:
        self.program = program
        self.log = log
        self.errno = errno
        self.truncated = truncated
        self.error_line, self.hint = error_lines(log)
        super().__init__(f"load program {program!r}", self._reason())

    def _reason(self) -> str:
        if not self.error_line:
            return (f"rejected by the verifier with {errno_name(self.errno)} and an empty log; "
                    f"{advice_for(self.errno)}")
        reason = f"rejected by the verifier: {self.error_line}"
        if self.hint:
            reason += f" ({self.hint})"
        if self.truncated:
            reason += " [log truncated]"
        return reason

    def summary(self) -> str:
        """One line: which program was rejected and the verifier's own error line."""
        return str(self)

    def tail(self, n: int = 20) -> list[str]:
        """The last ``n`` lines of the log (the path that led to the error)."""
        lines = self.log.rstrip("\n").splitlines()
        return lines[-n:] if n > 0 else []

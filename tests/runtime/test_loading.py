"""Loading objects: verifier statistics, rejections, libbpf failures, log growth, fd hygiene."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from etran.abi import PROG_TYPE_XDP
from etran.runtime import BpfError, VerifierError, load_object

from .conftest import open_fds
from .irobjects import ARRAY, HASH, XDP_LOAD_BOUNDS, MapDef, build_object, xdp_return

pytestmark = pytest.mark.kernel

# main program and a static .text subprogram, each with its own stack frame
STACKED = """
define i32 @stacked(ptr %ctx) section "xdp" {
  %k = alloca i32, align 4
  store i32 0, ptr %k, align 4
  %v = call ptr inttoptr (i64 1 to ptr)(ptr @arr, ptr %k)
  %isnull = icmp eq ptr %v, null
  br i1 %isnull, label %out, label %found
found:
  %r = call i32 @probe_hash(ptr %ctx)
  ret i32 %r
out:
  ret i32 2
}

define internal i32 @probe_hash(ptr %ctx) noinline {
  %k = alloca [2 x i64], align 8
  store i64 7, ptr %k, align 8
  %k1 = getelementptr i8, ptr %k, i64 8
  store i64 9, ptr %k1, align 8
  %v = call ptr inttoptr (i64 1 to ptr)(ptr @h, ptr %k)
  %isnull = icmp eq ptr %v, null
  %r = select i1 %isnull, i32 2, i32 1
  ret i32 %r
}
"""
STACKED_MAPS = [MapDef("arr", ARRAY, 4, 4, 8), MapDef("h", HASH, 8, 16, 8)]

# reads the EtherType without checking data_end: the verifier must refuse it
UNCHECKED_READ = f"""
define i32 @unchecked(ptr %ctx) section "xdp" {{
{XDP_LOAD_BOUNDS}
  %tp = getelementptr i8, ptr %data, i64 12
  %t = load i16, ptr %tp, align 2
  %is_ip = icmp eq i16 %t, 8
  %r = select i1 %is_ip, i32 1, i32 2
  ret i32 %r
}}
"""

# a loop the verifier walks iteration by iteration (the counter differs in every state, a
# helper's result is added each time): tens of thousands of instructions to check
SLOW_TO_VERIFY = """
define i32 @slow(ptr %ctx) section "xdp" {
entry:
  br label %loop
loop:
  %i = phi i32 [ 0, %entry ], [ %next, %loop ]
  %acc = phi i32 [ 0, %entry ], [ %sum, %loop ]
  %r = call i32 inttoptr (i64 7 to ptr)()
  %sum = add i32 %acc, %r
  %next = add i32 %i, 1
  %done = icmp eq i32 %next, 12000
  br i1 %done, label %out, label %loop
out:
  %bit = and i32 %sum, 1
  %v = add i32 %bit, 1
  ret i32 %v
}
"""


@contextmanager
def signals_during(send: Callable[[], None]) -> Iterator[None]:
    """Call `send` in a loop on another thread while the block runs."""
    stop = threading.Event()

    def storm() -> None:
        while not stop.is_set():
            send()
    thread = threading.Thread(target=storm, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def test_a_process_that_receives_signals_still_loads(kernel: None) -> None:
    """The verifier stops at a pending signal (libbpf retries five times, and an interval
    timer or a sampling profiler beats that): the loader holds ordinary signals during the
    load and they are handled afterwards."""
    elf = build_object(SLOW_TO_VERIFY)
    seen = [0]
    previous = signal.signal(signal.SIGALRM, lambda *_: seen.__setitem__(0, seen[0] + 1))
    signal.setitimer(signal.ITIMER_REAL, 0.0001, 0.0001)
    try:
        with load_object(elf, "slow") as obj:
            assert obj.programs["slow"].stats.processed_insns > 30_000
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert seen[0] > 0                       # the timer did fire, around the load


def test_a_load_stopped_by_a_signal_to_quit_says_so(kernel: None) -> None:
    """SIGINT, SIGTERM, SIGHUP and SIGQUIT still stop the verifier (the user wants out):
    the error says a signal stopped it, not that the verifier rejected the program."""
    elf = build_object(SLOW_TO_VERIFY)
    main = threading.get_ident()
    previous = signal.signal(signal.SIGHUP, lambda *_: None)
    try:
        with signals_during(lambda: signal.pthread_kill(main, signal.SIGHUP)), \
                pytest.raises(BpfError) as caught:
            load_object(elf, "slow")
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert not isinstance(caught.value, VerifierError)
    assert caught.value.errno == 11          # EAGAIN
    assert "received a signal while the kernel was checking a program" in str(caught.value)


def test_program_loads_with_statistics(kernel: None) -> None:
    with load_object(build_object(STACKED, STACKED_MAPS), "stacked") as obj:
        assert set(obj.programs) == {"stacked"}  # the subprogram is not a program
        prog = obj.programs["stacked"]
        assert prog.section == "xdp" and prog.prog_type == PROG_TYPE_XDP and prog.fd > 0
        stats = prog.stats
        assert stats.processed_insns > 0
        assert stats.verification_time_us > 0
        assert len(stats.stack_depth) == 2 and all(d > 0 for d in stats.stack_depth)
        assert stats.stack_depth[1] == 16  # the subprogram's 16-byte key
        assert f"processed {stats.processed_insns} insns" in prog.verifier_log
        assert "stack depth " + "+".join(map(str, stats.stack_depth)) in prog.verifier_log
        assert prog.xlated_insn_count() > 0
        assert prog.jited_size() > 0
        assert set(obj.maps) == {"arr", "h"} and obj.internal_maps == {}


def test_several_programs_in_one_section(kernel: None) -> None:
    elf = build_object(xdp_return(1, "one") + xdp_return(2, "two") + xdp_return(3, "three"))
    with load_object(elf) as obj:
        assert [obj.programs[n].test_run(bytes(64)).retval for n in ("one", "two", "three")] \
            == [1, 2, 3]
        assert len({p.fd for p in obj.programs.values()}) == 3


def test_rejected_program_raises_verifier_error(kernel: None) -> None:
    before = open_fds()
    with pytest.raises(VerifierError) as caught:
        load_object(build_object(UNCHECKED_READ), "rejected")
    err = caught.value
    assert err.program == "unchecked"
    assert err.error_line.startswith("invalid access to packet, off=12 size=2")
    summary = err.summary()
    assert "\n" not in summary and str(err) == summary
    assert "'unchecked'" in summary and "invalid access to packet, off=12 size=2" in summary
    # the whole log: the state at entry, the offending instruction, the stats line
    assert err.log.startswith("0: R1=ctx()")
    assert "r1 = *(u16 *)(r1 +12)" in err.log and "processed " in err.log
    assert err.tail(2)[-1].startswith("processed ")
    assert err.errno == 13  # EACCES
    assert open_fds() == before


def test_failure_names_the_failing_program_and_frees_the_good_ones(kernel: None) -> None:
    before = open_fds()
    elf = build_object(xdp_return(2, "good") + UNCHECKED_READ, [MapDef("h", HASH, 4, 4, 4)])
    for _ in range(3):
        with pytest.raises(VerifierError) as caught:
            load_object(elf)
        assert caught.value.program == "unchecked"
    assert open_fds() == before


def test_invalid_elf_raises_bpf_error_with_libbpf_messages(kernel: None) -> None:
    with pytest.raises(BpfError) as caught:
        load_object(b"\x7fELF this is not an object", "junk")
    err = caught.value
    assert str(err).startswith("open object 'junk': invalid BPF object format")
    assert err.details and all(line.startswith("libbpf: ") for line in err.details)


def test_unknown_section_fails_before_the_verifier(kernel: None) -> None:
    elf = build_object('define i32 @odd(ptr %ctx) section "xdp/odd" {\n  ret i32 2\n}\n')
    with pytest.raises(BpfError) as caught:
        load_object(elf, "odd")
    assert not isinstance(caught.value, VerifierError)
    assert caught.value.errno == 22  # EINVAL
    assert any("missing BPF prog type, check ELF section name 'xdp/odd'" in line
               for line in caught.value.details)


def test_small_log_buffer_is_grown_and_retried(kernel: None) -> None:
    elf = build_object(STACKED, STACKED_MAPS)
    with load_object(elf, log_level=2, log_size=256) as obj:
        log = obj.programs["stacked"].verifier_log
        assert len(log) > 256 and obj.programs["stacked"].stats.processed_insns > 0


def test_truncated_rejection_log_is_grown_until_complete(kernel: None) -> None:
    with pytest.raises(VerifierError) as caught:
        load_object(build_object(UNCHECKED_READ), log_size=64)
    assert caught.value.log.startswith("0: R1=ctx()") and not caught.value.truncated
    assert caught.value.error_line.startswith("invalid access to packet")


def test_close_is_idempotent_and_frees_every_fd(kernel: None) -> None:
    elf = build_object(STACKED, STACKED_MAPS)
    before = open_fds()
    for _ in range(5):
        obj = load_object(elf)
        prog, map_ = obj.programs["stacked"], obj.maps["arr"]
        assert len(open_fds().keys() - before.keys()) >= 3  # a program, two maps, BTF
        obj.close()
        obj.close()
        assert obj.closed and open_fds() == before
    with pytest.raises(Exception, match="closed"):
        prog.test_run(bytes(64))
    with pytest.raises(Exception, match="closed"):
        map_.lookup(bytes(4))


def test_object_dropped_without_close_is_freed(kernel: None) -> None:
    import gc
    before = open_fds()
    load_object(build_object(xdp_return(2)))
    gc.collect()
    assert open_fds() == before


def test_reused_maps_are_shared_between_objects(kernel: None) -> None:
    """`reuse=` makes a second object use a first one's map (how `etran nc` loads the native
    build's egress on a run's pinned maps): a value written through one is read through the
    other, and a map not named stays the second object's own. Closing either leaves the
    other's map working."""
    elf = build_object(STACKED, STACKED_MAPS)
    with load_object(elf, "first") as first:
        with load_object(elf, "second", reuse={"arr": first.maps["arr"].fd}) as second:
            first.maps["arr"].update(bytes(4), (0x1234).to_bytes(8, "little"))
            assert second.maps["arr"].lookup(bytes(4)) == (0x1234).to_bytes(8, "little")
            second.maps["h"].update((7).to_bytes(8, "little") + (9).to_bytes(8, "little"),
                                    bytes(8))
            assert list(first.maps["h"].keys()) == []
        first.maps["arr"].update(bytes(4), (5).to_bytes(8, "little"))
        assert first.maps["arr"].lookup(bytes(4)) == (5).to_bytes(8, "little")

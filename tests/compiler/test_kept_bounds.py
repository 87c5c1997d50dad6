"""The packet's bounds kept in registers (etran.lower.context.keeps_bounds): only in programs
without loops (once short ones are unrolled), and given up for a program whose frame they would push past the kernel's.
The kernel side is every differential test of a loop-free example (dctcp, flow_stats,
port_firewall, vlan_push's resize, ...) and tests/kernel/test_peephole_loads.py's counts."""
from __future__ import annotations

import pytest

from etran.dsl.diagnostics import DiagnosticError
from etran.lower.context import keeps_bounds
from etran.lower.irtext import module_text
from etran.lower.module import lower
from etran.pipeline import check_file, compile_program


def test_only_programs_without_loops_keep_the_packet_bounds() -> None:
    assert keeps_bounds(check_file("bench/c/counter.py"))
    assert not keeps_bounds(check_file("bench/c/tcp_options.py"))  # a loop
    checksum = check_file("bench/c/checksum.py")      # its one loop unrolled: no loop left
    assert keeps_bounds(checksum) and not keeps_bounds(checksum, unroll=False)
    assert not keeps_bounds(check_file("etran/transports/tcp.py"))   # `pkt.checksum`
    counter = check_file("bench/c/counter.py")
    # each bound loaded from the context once, at the hook's start; or at each use (both
    # bounds for each of the two views and for `pkt.len`)
    kept, _ = lower(counter, keep_bounds=True)
    assert module_text(kept).count("load volatile") == 2
    loaded, _ = lower(counter, keep_bounds=False)
    assert module_text(loaded).count("load volatile") == 6


def test_a_frame_over_the_limit_with_kept_bounds_is_compiled_again_without(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import etran.lower.module as module
    import etran.pipeline as pipeline
    asked: list[bool] = []
    real_lower, real_frames = module.lower, pipeline._check_frames

    def lower_spy(*args: object, keep_bounds: bool | None = None, **kw: object) -> object:
        asked.append(keep_bounds)
        return real_lower(*args, keep_bounds=keep_bounds, **kw)  # type: ignore[arg-type]

    def frames(program: object, elf: bytes) -> dict[str, tuple[int, int]]:
        if len(asked) == 1:  # the first build's frame "over 512 bytes"
            raise DiagnosticError([])
        return real_frames(program, elf)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "lower", lower_spy)
    monkeypatch.setattr(pipeline, "_check_frames", frames)
    obj = compile_program(check_file("bench/c/counter.py"))
    assert asked == [True, False] and obj.programs[0].insns > 0


def test_a_program_with_loops_is_not_compiled_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    import etran.pipeline as pipeline

    def frames(program: object, elf: bytes) -> dict[str, tuple[int, int]]:
        raise DiagnosticError([])

    monkeypatch.setattr(pipeline, "_check_frames", frames)
    with pytest.raises(DiagnosticError):
        compile_program(check_file("bench/c/tcp_options.py"))

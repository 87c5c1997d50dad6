#!/usr/bin/env python3
"""Mutation score of the test suite (issue 11): how many seeded bugs do the tests catch?

cosmic-ray (`.venv/bin/pip install -e '.[mutation]'`: cosmic-ray and coverage, not needed otherwise)
enumerates every mutant of the modules below: each is the source with one operator,
comparison, constant, boolean, `and`/`or`, `break`/`continue`, decorator or loop changed.
This script shuffles them with a fixed seed and takes the first N (a uniform sample; a run
stopped early is a smaller one), applies each to a temporary copy of the repository (`git
archive` of a commit into /tmp: the checkout is never mutated) and measures two scores:

(b) the differential fuzzers alone, at their CI budget (FUZZERS below): generated inputs on
    every hook of the 14 examples (300 cases per hook, `test_examples_fuzz.py`); generated
    programs (`test_progen.py`: (c) 1,400 programs x 3 inputs, kernel against interpreter,
    (b) 600 programs, verifier and estimate, and the checker-only (a) tests); `etran fuzz`
    as a user runs it (`tests/kernel/test_fuzz.py`: a clean program, and the seeded
    defects it must report). No hand-written unit test, no saved regression or counterexample.
(a) the whole suite, in stages, each only on the mutants the stages before left alive:
    (b); then REST, every other test under tests/compiler, tests/kernel, tests/property,
    tests/runtime, tests/structure, tests/test_cli.py and tests/test_readme.py (about a
    minute). That is the whole suite less tests/netns (topologies, TCP and Homa transfers),
    so (a) is a lower bound of the whole suite's score. `--netns` adds tests/netns as a
    third stage (about 85 s a mutant; a failure there counts only when the failed test fails
    again on the mutant and passes on the unmutated copy, as some are timing-dependent).
    Run it only on an otherwise idle machine: next to another session's netns tests, tests
    failed on the unmutated copy too, and a failed test can leave an `etran up --hold`
    process behind (stop it by its pid with SIGTERM, which tears its topology down).

A mutant is killed by (b) when the fuzzers' pytest run fails (a failed test, an import or
collection error) or exceeds its timeout; REST runs only on mutants (b) leaves alive (a
mutant (b) kills is killed by the whole suite too). Both use `-x -q -p no:cacheprovider`
and ETRAN_REQUIRE_KERNEL=1 (a kernel test cannot pass by skipping). In the copy, hypothesis
does not shrink failures (the verdict is the same, only found faster). Before the
mutants, (b) runs once on the unmutated copy under coverage.py: a mutant none of whose
lines (b) executes cannot change what (b) sees (its tests are derandomized and in one
process), so it is recorded as surviving (b) without running it ("not reached").

A mutant inside an annotation is equivalent by construction (`from __future__ import
annotations` leaves annotations unevaluated; mypy sees them, pytest cannot): recognised and
not run. Other survivors of (b) judged equivalent are listed in EQUIVALENT below with the
reason, the rest in MISSING with what kills them; equivalent mutants are left out of the
scores' denominators. Intervals are 95% Wilson intervals of the sample's proportion.

Usage (as root, the kernel tests need it; one process, one core; a mutant (b) kills takes
seconds, one it leaves alive about 4 minutes of (b) and 1 of REST):

    .venv/bin/python scripts/mutation_score.py --sample 70 --seed 11    # docs/mutation-report.md
    .venv/bin/python scripts/mutation_score.py --list             # count the mutants only
    .venv/bin/python scripts/mutation_score.py --report-only      # rewrite the report
    .venv/bin/python scripts/mutation_score.py --sample 70 --seed 11 \
        --extra-tests tests/property/test_mutants_killed.py  # new tests on what (a) left alive
    .venv/bin/python scripts/mutation_score.py --commit 3421d0d ...   # mutate another commit

Results are appended to --results (one JSON line per mutant; a rerun on the same commit
reuses the unmutated runs and every mutant already tested) and the report is written to
--report (docs/mutation-report.md) after every mutant.
"""
from __future__ import annotations

import argparse
import datetime
import difflib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"

# What is mutated, by group. The lowering's debug info (debuginfo.py) and the observation
# probes the differential harness adds (observe.py) are not part of issue 11's list. Nor is
# the peephole pass module (etran/backend/peephole.py), though a wrong pass miscompiles as
# surely: its opcode tables alone make 3,591 mutants, more than all of these together, and
# in one uniform sample they would crowd out the lowering's and interpreter's.
GROUPS = {
    "lowering": ["etran/lower/expressions.py", "etran/lower/statements.py",
                 "etran/lower/function.py", "etran/lower/context.py", "etran/lower/module.py",
                 "etran/lower/unroll.py"],
    "interpreter": ["etran/interp/interpreter.py", "etran/interp/state.py"],
    "semantics": ["etran/ir/semantics.py"],
    "codec": ["etran/ir/codec.py"],
}

# (b): the differential fuzzers at their CI budget, in the order they run (fastest first,
# so a mutant they kill is usually killed within seconds).
FUZZERS = [
    "tests/property/test_examples_fuzz.py::test_example_hooks_agree_on_generated_inputs",
    "tests/kernel/test_fuzz.py::test_fuzz_without_a_defect_finds_nothing",
    "tests/kernel/test_fuzz.py::test_fuzz_catches_a_seeded_compiler_defect",
    "tests/kernel/test_fuzz.py::test_fuzz_shows_a_timer_counterexample_as_the_entry_it_fired_for",
    "tests/property/test_progen.py::test_kernel_and_interpreter_agree",
    "tests/property/test_progen.py::test_accepted_programs_pass_the_verifier_within_the_estimate",
    "tests/property/test_progen.py::test_generated_programs_parse_and_check",
    "tests/property/test_progen.py::test_generated_programs_reach_every_corner_at_run_time",
]
# (a) = (b) + REST.
REST = ["tests/compiler", "tests/kernel", "tests/property", "tests/runtime", "tests/structure",
        "tests/test_cli.py", "tests/test_readme.py"]
NETNS = ["tests/netns"]
PYTEST = ["-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]

# Survivors of (b) judged equivalent, by (file, enclosing function, the line before, the line
# after, both stripped) -> why no program, input or map content can tell the mutant from
# the original (nothing etran computes or prints changes).
EQUIVALENT: dict[tuple[str, str, str, str], str] = {
    ("etran/lower/statements.py", "s_Return", "self.b.ret(ir.Constant(I32, 2))",
     "self.b.ret(ir.Constant(I32, 3))"):
        "a bare `return` in a packet hook: the checker refuses it (`f` must return a u32), so "
        "this line is never lowered",
    ("etran/lower/function.py", "info_field",
     "return self.b.gep(self.pkt_info, [ir.Constant(I64, 4 * index)], source_etype=I8) \\",
     "return self.b.gep(self.pkt_info, [ir.Constant(I64, 4 ** index)], source_etype=I8) \\"):
        "the record has two u32 fields: index 0 takes the other branch, and 4 ** 1 == 4 * 1",
    ("etran/lower/expressions.py", "address", "if off == 0:", "if off <= 0:"):
        "a field's offset and a checked constant index times the element's size are never "
        "negative",
    ("etran/ir/semantics.py", "checksum",
     "n = max(0, min(length, len(data) - offset, CHECKSUM_MAX_BYTES)) if offset < len(data) else 0",
     "n = max(0, min(length, len(data) - offset, CHECKSUM_MAX_BYTES)) if offset <= len(data) else 0"):
        "at offset == len(data) both give n = 0 (min(length, 0, ...) clipped at 0)",
    ("etran/ir/semantics.py", "checksum", "if n % 2:", "if n | 2:"):
        "a zero byte is then appended to an even piece too, and becomes a last one-byte word "
        "of value 0: the sum is the same",
    ("etran/interp/interpreter.py", "_update", "for lo, hi, old in keep:", "for lo, hi, old in []:"):
        "as `if not ranges:` below: the SpinLock/Timer bytes then come from the new value, "
        "always a fresh zeroed struct, and nothing reads them (snapshot() zeroes them)",
    ("etran/lower/function.py", "copy",
     "def copy(self, dst: ir.Value, src: ir.Value, size: int, align: int = 1) -> None:",
     "def copy(self, dst: ir.Value, src: ir.Value, size: int, align: int = 2) -> None:"):
        "a default no caller uses: each of copy's three callers passes the alignment",
    ("etran/lower/expressions.py", "x_PacketChecksum", "CHECKSUM_CHUNK + 4), I64)",
     "CHECKSUM_CHUNK ^ 4), I64)"):
        "CHECKSUM_CHUNK is 64: 64 ^ 4 == 64 + 4",
    ("etran/interp/interpreter.py", "e_Binary",
     "return semantics.binary(e.op, a, b, e.type, rt.bits if isinstance(rt, IntType) else 64)",
     "return semantics.binary(e.op, a, b, e.type, rt.bits if not isinstance(rt, IntType) else 64)"):
        "the checker gives every Binary an integer right operand, so the count is masked to 64 "
        "bits instead of its own width w >= 8: the same for a count >= 0; a negative one is >= "
        "2**(w-1) >= 128 either way, past every width, so the shift gives the same 0 or sign fill",
    ("etran/interp/interpreter.py", "_update", "if not ranges:", "if  ranges:"):
        "a map update then copies the new value's SpinLock/Timer bytes instead of keeping the "
        "slot's: such a value is always a fresh, zeroed struct (the checker refuses copying one "
        "out of a map), no program reads those bytes, and snapshot() zeroes them (as the kernel "
        "shows them), so nothing observes them",
    ("etran/interp/state.py", "__repr__", "return f\"Ref({self.map or 'mem'}+{self.off})\"",
     "return f\"Ref({self.map and 'mem'}+{self.off})\""):
        "a debugging repr; no code formats a Ref",
    ("etran/ir/semantics.py", "binary",
     "count = b & ((1 << count_bits) - 1)  # the count's bit pattern, as unsigned",
     "count = b & (( 2 << count_bits) - 1)  # the count's bit pattern, as unsigned"):
        "a count is a value of its own type (width w >= 8): the extra bit w is set only for a "
        "negative count, whose w-bit pattern is already >= 128, past every width",
    ("etran/ir/semantics.py", "unary", 'if op == "~":', 'if op <= "~":'):
        "the checker sends only `-` (handled just before) and `~` to unary(): `+` and `not` "
        "never get here, so `<=` and `==` decide alike",
    ("etran/ir/semantics.py", "checksum", "if n % 2:", "if n * 2:"):
        "a zero byte padded to an even-length range adds a last word of b'\\0', worth 0",
    ("etran/lower/expressions.py", "x_NewStruct",
     "math.gcd(src_align, math.gcd(8, f.offset) if f.offset else 8))",
     "math.gcd(src_align, math.gcd(8, f.offset) if f.offset else 9))"):
        "an alignment is a promise LLVM may rely on; gcd(x, 9) = 1 promises less, which is "
        "always true: the copy of a nested struct at offset 0 may take more instructions, "
        "its result is the same",
    ("etran/interp/interpreter.py", "<module>", "MAX_PACKET_OFFSET = 0xFFFF", "MAX_PACKET_OFFSET = 65534"):
        "used only in e_PacketHeader's `off > MAX_PACKET_OFFSET - size or off + size > len(data)`: "
        "an offset the mutant refuses and the original accepts is past 65533 - size, so off + size "
        "is past every frame an XDP program sees (at most a page), and both give None",
    ("etran/interp/interpreter.py", "e_PacketHeader",
     "if off > MAX_PACKET_OFFSET - e.header.size or off + e.header.size > len(m.packet.data):",
     "if off > MAX_PACKET_OFFSET << e.header.size or off + e.header.size > len(m.packet.data):"):
        "the mutant only accepts more offsets (65535 << size is larger), each past 65535 - size, "
        "so off + size is past every frame an XDP program sees and the second test gives None",
    ("etran/interp/interpreter.py", "call", 'if isinstance(sig, _Signal) and sig.kind == "return":',
     'if isinstance(sig, _Signal) and sig.kind is "return":'):
        "the same at run time (CPython interns both identifier-like strings); compiling the "
        "module warns (SyntaxWarning), but no test runs a command that imports the interpreter "
        "with the warning shown",
    ("etran/ir/semantics.py", "binary",
     "def binary(op: str, a: int, b: int, t: IntType, count_bits: int = 64) -> int:",
     "def binary(op: str, a: int, b: int, t: IntType, count_bits: int = 63) -> int:"):
        "count_bits is read by the shift operators only, and every caller that folds or runs a "
        "shift passes it (the checker's constant folding of shifts, the interpreter); the "
        "default is used only for the other operators",
    ("etran/ir/semantics.py", "checksum",
     "n = max(0, min(length, len(data) - offset, CHECKSUM_MAX_BYTES)) if offset < len(data) else 0",
     "n = max(0, min(length, len(data) - offset, CHECKSUM_MAX_BYTES)) if offset != len(data) else 0"):
        "differs only for an offset past the packet's end, where len(data) - offset is negative "
        "and max(0, ...) gives the same 0",
}

# Survivors of (b) that are not equivalent, by the same key -> what kills them: a hand-written
# test of (a), or one in tests/property/test_mutants_killed.py written for it.
KILLED_BY_NEW = "tests/property/test_mutants_killed.py::"
MISSING: dict[tuple[str, str, str, str], str] = {
    ("etran/interp/interpreter.py", "e_PacketResize", "if delta > p.tailroom:",
     "if delta >= p.tailroom:"):
        "the whole suite kills it (test_a_resize_to_under_an_ethernet_header_or_past_the_test_"
        "frame_fails_in_both); the fuzzers did not grow a tail by exactly the room left. Since "
        "progen's edge resizes include `pkt.resize_tail(i32(3520) - i32(pkt.len))` (and one "
        "more byte), test_progen (c) kills it (checked by applying it)",
    ("etran/ir/semantics.py", "exact_binary", 'if op in ("//", "%") and b == 0:',
     'if not op in ("//", "%") and b == 0:'):
        "no test folded two literals with a zero right operand; killed by " + KILLED_BY_NEW
        + "test_untyped_constants_with_a_zero_operand, and by the fuzzers since progen writes "
        "some untyped constants as two literals (`v + 0`: test_progen's parse-and-check)",
    ("etran/interp/state.py", "<module>",
     "DEFAULT_HEADROOM = TEST_RUN_HEADROOM - XDP_FRAME_SIZE  # XDP_PACKET_HEADROOM minus struct xdp_frame",
     "DEFAULT_HEADROOM = TEST_RUN_HEADROOM >> XDP_FRAME_SIZE  # XDP_PACKET_HEADROOM minus struct xdp_frame"):
        "every test built its inputs with frame_input, which sets the headroom; killed by "
        + KILLED_BY_NEW + "test_a_run_input_s_default_headroom_is_the_test_run_s",
    ("etran/ir/codec.py", "_int", "except ValueError:", "except CosmicRayTestingException:"):
        "no test gave a non-integer string; killed by " + KILLED_BY_NEW
        + "test_codec_reads_only_integers_and_dotted_quads_for_32_bits",
    ("etran/ir/codec.py", "pack_into",
     "if isinstance(value, str) and t.bits == 32 and value.count(\".\") == 3:",
     "if isinstance(value, str) and t.bits <= 32 and value.count(\".\") == 3:"):
        "no test gave a dotted quad for a 16-bit field; killed by " + KILLED_BY_NEW
        + "test_codec_reads_only_integers_and_dotted_quads_for_32_bits",
    ("etran/interp/interpreter.py", "e_RingOutput", "need = RINGBUF_HEADER + (size + 7) // 8 * 8",
     "need = RINGBUF_HEADER // (size + 7) // 8 * 8"):
        "no generated program fills a ring buffer within one run; killed by "
        + KILLED_BY_NEW + "test_a_ring_buffer_filled_in_one_run_holds_the_same_records",
    ("etran/interp/interpreter.py", "e_RingOutput", "need = RINGBUF_HEADER + (size + 7) // 8 * 8",
     "need = RINGBUF_HEADER + (size + 7) // 8 * 7"):
        "the same; killed by " + KILLED_BY_NEW
        + "test_a_ring_buffer_filled_in_one_run_holds_the_same_records",
    ("etran/interp/interpreter.py", "e_PacketResize", "return 0", "return 1"):
        "no generated program grows the head past the headroom (resizes are small); killed by "
        + KILLED_BY_NEW + "test_a_resize_to_under_an_ethernet_header_or_past_the_test_frame_fails_in_both",
    ("etran/interp/state.py", "special_ranges", "if t is None:", "if t is not None:"):
        "generated map contents have zero SpinLock/Timer bytes, so their masking is never "
        "exercised; killed by " + KILLED_BY_NEW + "test_a_snapshot_reads_spin_lock_bytes_as_zero",
    ("etran/interp/state.py", "set_raw",
     "vals = value if isinstance(value, list) else [value] * self.ncpu",
     "vals = value if isinstance(value, list) else [value] & self.ncpu"):
        "the fuzzers give per-CPU maps one value per CPU; killed by "
        + KILLED_BY_NEW + "test_one_value_for_a_per_cpu_map_is_every_cpus",
    ("etran/interp/state.py", "frame_input", "tailroom=max(MAX_TEST_FRAME - len(packet), 0), **kw)",
     "tailroom=max(MAX_TEST_FRAME + len(packet), 0), **kw)"):
        "no generated program grows the tail by kilobytes; killed by " + KILLED_BY_NEW
        + "test_a_resize_to_under_an_ethernet_header_or_past_the_test_frame_fails_in_both",
    ("etran/ir/codec.py", "<module>",
     '(8, True): "b", (16, True): "h", (32, True): "i", (64, True): "q"}',
     '(8, True): "b", (16, True): "h", (32, True): "i", (64, False): "q"}'):
        "the fuzzers compare raw bytes and encode no value through the codec; (a) kills it "
        "(hand-written map contents of the Homa hooks)",
    ("etran/ir/codec.py", "pack_into", 'struct.pack_into("<" + _FMT[(t.bits, t.signed)], buf, offset, v)',
     'struct.pack_into("<" & _FMT[(t.bits, t.signed)], buf, offset, v)'):
        "the fuzzers encode no value through the codec; (a) kills it",
    ("etran/ir/codec.py", "pack_into", "if not 0 <= v < (1 << t.bits):", "if not 0 <= v < (1 & t.bits):"):
        "the fuzzers encode no value through the codec; (a) kills it",
    ("etran/ir/codec.py", "pack_into",
     "buf[offset:offset + t.size] = bytes(t.size)  # the kernel owns these; they read as zero",
     "buf[offset:offset >> t.size] = bytes(t.size)  # the kernel owns these; they read as zero"):
        "only a value that names a SpinLock/Timer field reaches it; killed by " + KILLED_BY_NEW
        + "test_codec_pads_a_short_array_of_structs_and_zeroes_a_spin_lock",
    ("etran/ir/codec.py", "pack_into", "unknown = set(value) - {f.name for f in t.fields}",
     "unknown = set(value) >> {f.name for f in t.fields}"):
        "the fuzzers encode no value through the codec; (a) kills it",
    ("etran/ir/codec.py", "_array_items", "else list(value) + [{}] * (t.length - len(value))",
     "else list(value) + [{}] * (t.length << len(value))"):
        "a short array of structs given as Python values; killed by " + KILLED_BY_NEW
        + "test_codec_pads_a_short_array_of_structs_and_zeroes_a_spin_lock",
    ("etran/ir/codec.py", "unpack_from",
     "if pretty and t.length == 6 and isinstance(t.elem, IntType) and t.elem.bits == 8:",
     "if pretty or t.length == 6 and isinstance(t.elem, IntType) and t.elem.bits == 8:"):
        "the fuzzers decode values only to show a difference; (a) kills it",
    ("etran/ir/codec.py", "format_value",
     'return "[" + ("," if compact else ", ").join(format_value(v, compact) for v in value) + "]"',
     'return "[" + ("," if compact else ", ").join(format_value(v, compact) for v in value) & "]"'):
        "a list is formatted only in `etran status` and in a mismatch's report; killed by "
        + KILLED_BY_NEW + "test_format_value_shows_lists",
    ("etran/ir/semantics.py", "binary", 'if op == "+":', 'if op is "+":'):
        "the same at run time (CPython interns both strings) but compiling the module warns "
        "(SyntaxWarning: \"is\" with a literal), which a CLI test sees on stderr: (a) kills it",
    ("etran/ir/semantics.py", "exact_binary",
     '"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "//": lambda: a // b,',
     '"+": lambda: a + b, "-": lambda: a | b, "*": lambda: a * b, "//": lambda: a // b,'):
        "no program subtracts two literals whose difference is not their bitwise or; killed by "
        + KILLED_BY_NEW + "test_untyped_constants_fold_as_python_integers",
    ("etran/lower/expressions.py", "fits", "return ir.Constant(I1, 1)", "return ir.Constant(I1, 2)"):
        "the `no-packet-bounds` seeded defect (testing the tester), which no fuzzer enables; "
        "(a) kills it (tests/kernel/test_verifier_report.py)",
    ("etran/interp/interpreter.py", "e_RingOutput", "need = RINGBUF_HEADER + (size + 7) // 8 * 8",
     "need = RINGBUF_HEADER >> (size + 7) // 8 * 8"):
        "a generated flood of the ring within one run is rare at the CI budget (more since, "
        "progen floods at half of its outputs outside loops); (a) kills it, and so does "
        + KILLED_BY_NEW + "test_a_ring_buffer_filled_in_one_run_holds_the_same_records",
    ("etran/interp/interpreter.py", "e_RingOutput", "need = RINGBUF_HEADER + (size + 7) // 8 * 8",
     "need = RINGBUF_HEADER ^ (size + 7) // 8 * 8"):
        "the same; (a) kills it",
    ("etran/interp/interpreter.py", "e_RingOutput", "need = RINGBUF_HEADER + (size + 7) // 8 * 8",
     "need = RINGBUF_HEADER + (size | 7) // 8 * 8"):
        "the same for a value whose size is a multiple of 8: only a flood of records of another "
        "size tells; killed by " + KILLED_BY_NEW
        + "test_a_record_not_a_multiple_of_8_bytes_takes_its_size_rounded_up",
    ("etran/interp/state.py", "special_ranges", "return [(f.offset, f.offset + f.type.size) for f in t.fields",
     "return [(f.offset, f.offset | f.type.size) for f in t.fields"):
        "the same for a lock at offset 0 or 8 (progen's lock structs put it first or last); "
        "killed by " + KILLED_BY_NEW + "test_a_snapshot_zeroes_a_spin_lock_that_does_not_start_a_word",
    ("etran/lower/expressions.py", "shift_op", "n = count.constant & ((1 << count.type.width) - 1)",
     "n = count.constant % ((1 << count.type.width) - 1)"):
        "differs only for a constant count of all ones at its type (u8(255), i16(-1)), which "
        "progen did not draw (it does since); killed by " + KILLED_BY_NEW
        + "test_a_constant_count_with_every_bit_set_is_past_the_width",
    ("etran/lower/expressions.py", "x_IsNone",
     "if isinstance(e.operand, tir.VarRef) and e.operand.var in self.views:",
     "if not isinstance(e.operand, tir.VarRef) and e.operand.var in self.views:"):
        "progen tests only variables for None (`v is None`), never a lookup or view directly "
        "(`m.get(k) is None`), whose operand has no `var`; (a) kills it (the corpus)",
    ('etran/ir/codec.py', '_array_items',
     'else list(value) + [{}] * (t.length - len(value))',
     'else list(value) + [{}] * (t.length / len(value))'):
        "not equivalent: the fuzzers compare raw bytes and encode no value through the codec; "
        "(a) kills it",
    ('etran/ir/codec.py', 'pack_into',
     'pack_into(buf, offset + f.offset, f.type, value[f.name], f"{where}.{f.name}")',
     'pack_into(buf, offset & f.offset, f.type, value[f.name], f"{where}.{f.name}")'):
        "not equivalent: the fuzzers compare raw bytes and encode no value through the codec; "
        "(a) kills it",
    ('etran/ir/codec.py', 'unpack_from', 'if isinstance(t, ArrayType):', 'if not isinstance(t, ArrayType):'):
        "not equivalent: the fuzzers compare raw bytes and encode no value through the codec; "
        "(a) kills it",
    ('etran/ir/codec.py', 'pack_into',
     'pack_into(buf, offset + i * t.elem.size, t.elem, item, f"{where}[{i}]")',
     'pack_into(buf, offset + i | t.elem.size, t.elem, item, f"{where}[{i}]")'):
        "not equivalent: the fuzzers compare raw bytes and encode no value through the codec; "
        "(a) kills it",
    ('etran/ir/codec.py', '_array_items',
     'return list(value) + [0] * (t.length - len(value)) if not isinstance(t.elem, StructType) \\',
     'return list(value) + [0] * (t.length - len(value)) if  isinstance(t.elem, StructType) \\'):
        "not equivalent: the fuzzers compare raw bytes and encode no value through the codec; "
        "(a) kills it",
    ('etran/ir/codec.py', '_array_items',
     'return list(value) + [0] * (t.length - len(value)) if not isinstance(t.elem, StructType) \\',
     'return list(value) >> [0] * (t.length - len(value)) if not isinstance(t.elem, StructType) \\'):
        "not equivalent: the fuzzers compare raw bytes and encode no value through the codec; "
        "(a) kills it",
    ('etran/ir/codec.py', '<module>',
     '(8, True): "b", (16, True): "h", (32, True): "i", (64, True): "q"}',
     '(8, True): "b", (16, True): "h", (32, True): "i", ( 63, True): "q"}'):
        "not equivalent: the fuzzers compare raw bytes and encode no value through the codec; "
        "(a) kills it",
    ('etran/ir/codec.py', 'pack_into',
     'if isinstance(value, str) and t.bits == 32 and value.count(".") == 3:',
     'if isinstance(value, str) and t.bits < 32 and value.count(".") == 3:'):
        "not equivalent: the fuzzers compare raw bytes and encode no value through the codec; "
        "(a) kills it",
}


# ------------------------------------------------------------------------------ the copy
def make_copy(commit: str, dest: Path) -> None:
    """The tracked files of `commit`, in `dest`; hypothesis told not to shrink there."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    conftest = dest / "tests" / "conftest.py"
    text = conftest.read_text()
    old_import, old_profile = ("from hypothesis import settings\n",
                               'settings.register_profile("etran", database=None)\n')
    if old_import in text and old_profile in text:
        text = text.replace(old_import, "from hypothesis import Phase, settings\n").replace(
            old_profile, 'settings.register_profile("etran", database=None, phases=[Phase.explicit, '
                         'Phase.reuse, Phase.generate])\n')
        conftest.write_text(text)
    else:
        print("note: tests/conftest.py changed; hypothesis will shrink failures (slower)",
              file=sys.stderr)


def env_for(copy: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(copy), "ETRAN_REQUIRE_KERNEL": "1",
            "PYTHONHASHSEED": "0"}


def run(cmd: list[str], cwd: Path, timeout: float) -> tuple[str, float, str]:
    """('passed' | 'failed' | 'timeout', seconds, the last lines of output). The command
    runs in a session of its own, killed whole (by its group id) at the timeout."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env_for(cwd), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
            verdict = "passed" if code == 0 else "failed"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            verdict = "timeout"
        out.seek(0)
        tail = out.read().decode(errors="replace")[-6000:]
    return verdict, time.monotonic() - start, tail


def failed_test(output: str) -> str | None:
    """The node id of the first test a `pytest -q` run reports failed or in error."""
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split()[1]
    return None


def first_failure(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line[:200]
    for line in output.splitlines():
        if "Error" in line or "error" in line:
            return line.strip()[:200]
    return output.strip().splitlines()[-1][:200] if output.strip() else ""


# ------------------------------------------------------------------------------ mutants
def enumerate_mutants(copy: Path) -> list[dict[str, Any]]:
    """Every mutant cosmic-ray makes of the modules in GROUPS, in a stable order."""
    from cosmic_ray.commands import init
    from cosmic_ray.work_db import WorkDB, use_db

    # a commit older than a module GROUPS names (`--commit`) has no mutants of it
    paths = [Path(p) for files in GROUPS.values() for p in files if (copy / p).exists()]
    cwd = os.getcwd()
    os.chdir(copy)
    try:
        with tempfile.TemporaryDirectory() as tmp, use_db(Path(tmp) / "session.sqlite",
                                                          WorkDB.Mode.create) as db:
            init(paths, db, {})
            items = list(db.work_items)
    finally:
        os.chdir(cwd)
    mutants = []
    for item in items:
        (m,) = item.mutations
        mutants.append({"path": str(m.module_path), "operator": m.operator_name,
                        "occurrence": m.occurrence, "start": list(m.start_pos),
                        "end": list(m.end_pos)})
    mutants.sort(key=lambda m: (m["path"], m["operator"], m["occurrence"]))
    return mutants


def mutant_id(m: dict[str, Any]) -> str:
    return f"{m['path']}:{m['operator'].split('/')[-1]}:{m['occurrence']}"


def group_of(path: str) -> str:
    return next(g for g, files in GROUPS.items() if path in files)


def mutate(copy: Path, m: dict[str, Any]) -> tuple[str, str]:
    """The mutated source of m's module, and the changed line before and after."""
    import cosmic_ray.plugins
    from cosmic_ray.mutating import mutate_code

    source = (copy / m["path"]).read_text()
    operator = cosmic_ray.plugins.get_operator(m["operator"])()
    mutated = mutate_code(source, operator, m["occurrence"])
    if mutated is None:
        raise RuntimeError(f"cosmic-ray made no mutant for {mutant_id(m)}")
    before, after = source.splitlines(), mutated.splitlines()
    removed, added = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=before, b=after).get_opcodes():
        if op != "equal":
            removed += before[i1:i2]
            added += after[j1:j2]
    m["before"] = " / ".join(s.strip() for s in removed)
    m["after"] = " / ".join(s.strip() for s in added)
    m["function"] = enclosing_function(source, m["start"][0])
    return mutated, m["before"]


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where the annotations of a module are, if `from __future__ import annotations` makes
    them strings nobody evaluates (nothing in the mutated modules calls get_type_hints):
    a mutant inside one is equivalent at run time (mypy, in scripts/test.sh, sees it)."""
    import ast
    tree = ast.parse(source)
    if not any(isinstance(n, ast.ImportFrom) and n.module == "__future__"
               and any(a.name == "annotations" for a in n.names) for n in tree.body):
        return []
    nodes: list[ast.expr | None] = []
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            nodes.append(n.returns)
        elif isinstance(n, (ast.arg, ast.AnnAssign)):
            nodes.append(n.annotation)
    return [((a.lineno, a.col_offset), (a.end_lineno or a.lineno, a.end_col_offset or 0))
            for a in nodes if a is not None]


def in_annotation(copy: Path, m: dict[str, Any]) -> bool:
    start, end = tuple(m["start"]), tuple(m["end"])
    return any(lo <= start and end <= hi
               for lo, hi in annotation_spans((copy / m["path"]).read_text()))


def key_of(r: dict[str, Any]) -> tuple[str, str, str, str]:
    return (r["path"], r.get("function", ""), r["before"], r["after"])


def enclosing_function(source: str, line: int) -> str:
    import ast
    spans = [(n.lineno, n.name) for n in ast.walk(ast.parse(source))
             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
             and n.lineno <= line <= (n.end_lineno or n.lineno)]
    return max(spans)[1] if spans else "<module>"       # the innermost: the latest start


# ------------------------------------------------------------------------------ coverage
def fuzzer_lines(copy: Path, timeout: float) -> tuple[dict[str, set[int]], float]:
    """Run (b) once on the unmutated copy under coverage.py: the lines of each mutated
    module it executes, and how long it took. (b) must pass there."""
    data_file = copy / ".coverage.fuzzers"
    include = ",".join(str(copy / p) for files in GROUPS.values() for p in files)
    cmd = [str(PYTHON), "-m", "coverage", "run", f"--data-file={data_file}",
           f"--include={include}", *PYTEST, *FUZZERS]
    verdict, seconds, tail = run(cmd, copy, timeout)
    if verdict != "passed":
        sys.exit(f"(b) does not pass on the unmutated copy ({verdict}):\n{tail}")
    from coverage import CoverageData
    data = CoverageData(basename=str(data_file))
    data.read()
    lines = {p: set(data.lines(str(copy / p)) or ()) for files in GROUPS.values() for p in files}
    return lines, seconds


def reached(m: dict[str, Any], lines: dict[str, set[int]]) -> bool:
    executed = lines.get(m["path"], set())
    return any(n in executed for n in range(m["start"][0], m["end"][0] + 1))


# ------------------------------------------------------------------------------ one mutant
def mutated_copy(base: Path, work: Path, m: dict[str, Any]) -> Path:
    shutil.copytree(base, work / "repo", symlinks=True)
    copy = work / "repo"
    mutated, _ = mutate(copy, m)
    target = copy / m["path"]
    target.write_text(mutated)
    for pyc in (target.parent / "__pycache__").glob(target.stem + ".*.pyc"):
        pyc.unlink()
    return copy


def netns_stage(base: Path, r: dict[str, Any], timeout: float) -> None:
    """tests/netns on a mutant the stages before left alive; a failure is confirmed (the
    failed test fails again on the mutant, passes on the unmutated copy) or ignored."""
    work = Path(tempfile.mkdtemp(prefix="etran-mutant-", dir="/tmp"))
    try:
        copy = mutated_copy(base, work, r)
        verdict, seconds, tail = run([str(PYTHON), *PYTEST, *NETNS], copy, timeout)
        r["netns_by"] = ""
        if verdict == "failed":
            test = failed_test(tail)
            again = run([str(PYTHON), *PYTEST, test], copy, timeout)[0] if test else "passed"
            clean = run([str(PYTHON), *PYTEST, test], base, timeout)[0] if test else "failed"
            if again == "failed" and clean == "passed":
                r["netns_by"] = first_failure(tail)
            else:
                verdict = "passed"
                r["netns_by"] = f"(not confirmed: {test} {again} again, {clean} unmutated)"
        r["netns"], r["netns_seconds"] = verdict, seconds
    finally:
        shutil.rmtree(work, ignore_errors=True)


def extra_stage(base: Path, r: dict[str, Any], tests: list[str], timeout: float) -> None:
    """Test files of the checkout (new ones, not yet in the commit mutated) on a mutant the
    suite left alive: do they kill it?"""
    work = Path(tempfile.mkdtemp(prefix="etran-mutant-", dir="/tmp"))
    try:
        copy = mutated_copy(base, work, r)
        for t in tests:
            shutil.copy2(ROOT / t, copy / t)
        r["extra"], r["extra_seconds"], tail = run([str(PYTHON), *PYTEST, *tests], copy, timeout)
        r["extra_by"] = first_failure(tail) if r["extra"] == "failed" else ""
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_mutant(base: Path, m: dict[str, Any], lines: dict[str, set[int]],
                timeouts: tuple[float, float]) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="etran-mutant-", dir="/tmp"))
    try:
        copy = mutated_copy(base, work, m)
        r = dict(m, group=group_of(m["path"]))
        if in_annotation(base, m):
            r.update(b="equivalent", a="equivalent", b_seconds=0.0, a_seconds=0.0, b_by="", a_by="",
                     equivalent="in an annotation, which `from __future__ import annotations` "
                                "leaves a string nothing evaluates")
            return r
        if reached(m, lines):
            r["b"], r["b_seconds"], tail = run([str(PYTHON), *PYTEST, *FUZZERS], copy, timeouts[0])
            r["b_by"] = first_failure(tail) if r["b"] == "failed" else ""
        else:
            r["b"], r["b_seconds"], r["b_by"] = "not reached", 0.0, ""
        if r["b"] in ("failed", "timeout"):
            r["a"], r["a_seconds"], r["a_by"] = r["b"], 0.0, "(b)"
        else:
            deselect = [arg for t in FUZZERS for arg in ("--deselect", t)]
            r["a"], r["a_seconds"], tail = run([str(PYTHON), *PYTEST, *deselect, *REST], copy,
                                               timeouts[1])
            r["a_by"] = first_failure(tail) if r["a"] == "failed" else ""
        return r
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------ the report
def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def killed(r: dict[str, Any], which: str) -> bool:
    if which == "extra":
        return killed(r, "a") or r.get("extra") in ("failed", "timeout")
    if which == "a" and r.get("netns") in ("failed", "timeout"):
        return True
    return r[which] in ("failed", "timeout")


def equivalent(r: dict[str, Any]) -> str | None:
    return r.get("equivalent") or EQUIVALENT.get(key_of(r))


def score_line(rows: list[dict[str, Any]], which: str) -> str:
    scored = [r for r in rows if not equivalent(r)]
    k, n = sum(killed(r, which) for r in scored), len(scored)
    if n == 0:
        return "no mutant"
    lo, hi = wilson(k, n)
    return f"**{100 * k / n:.1f}%** ({k} of {n}; 95% interval {100 * lo:.0f}-{100 * hi:.0f}%)"


def write_report(path: Path, meta: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    eq = [r for r in rows if equivalent(r)]
    auto = [r for r in eq if r.get("equivalent")]
    sections = [("all sampled mutants", rows),
                ("lowering and interpreter", [r for r in rows if r["group"] in ("lowering", "interpreter")])]
    sections += [(g, [r for r in rows if r["group"] == g]) for g in GROUPS]
    out = [
        "# Mutation score of the test suite",
        "",
        "Written by `scripts/mutation_score.py` (its docstring says how it works); do not edit by hand.",
        "",
        f"* commit `{meta['commit'][:12]}`, {meta['date']}, cosmic-ray {meta['tool']}",
        f"* mutants of the modules: {meta['population']} "
        + "(" + ", ".join(f"{g} {n}" for g, n in meta["by_group"].items()) + ")",
        f"* sample: **{len(rows)}** mutants drawn uniformly (the first {len(rows)} of the "
        f"population shuffled with seed {meta['seed']}; {meta['sample']} asked)",
        f"* (b) the differential fuzzers alone: `pytest -x {' '.join(FUZZERS)}`",
        f"* (a) the whole suite: (b), then `pytest -x {' '.join(REST)}` without (b)'s tests, "
        f"then `pytest -x {' '.join(NETNS)}`"
        + ("" if meta.get("netns") else " (**not run**: (a) is a lower bound)"),
        f"* unmutated: (b) {meta['baseline_b']:.0f} s under coverage, the rest "
        f"{meta['baseline_rest']:.0f} s; timeouts (b) {meta['timeouts'][0]:.0f} s, the rest "
        f"{meta['timeouts'][1]:.0f} s"
        + (f", tests/netns {meta['timeouts'][2]:.0f} s" if meta.get("netns") else ""),
        f"* time spent testing the mutants: "
        f"{sum(r['b_seconds'] + r['a_seconds'] + r.get('netns_seconds', 0) for r in rows) / 60:.0f} min",
        f"* equivalent mutants in the sample (left out of the scores): {len(eq)}, of which "
        f"{len(auto)} inside annotations (recognised by the script, not run)",
        "",
        "## Scores",
        "",
        "Killed share of the non-equivalent sampled mutants, with a 95% Wilson interval "
        "for the share among all the population's mutants of that kind.",
        "",
        "| mutants | sampled | (b) the fuzzers alone | (a) the whole suite"
        + ("" if meta.get("netns") else " less tests/netns") + " |"
        + (" (a) with the new tests |" if meta.get("extra") else ""),
        "| --- | --- | --- | --- |" + (" --- |" if meta.get("extra") else ""),
    ]
    for name, rs in sections:
        out.append(f"| {name} | {len(rs)} | {score_line(rs, 'b')} | {score_line(rs, 'a')} |"
                   + (f" {score_line(rs, 'extra')} |" if meta.get("extra") else ""))
    if meta.get("extra"):
        out += ["", f"The new tests: {', '.join(f'`{t}`' for t in meta['extra'])}, run from the "
                "checkout on every mutant (a) left alive (they are not in the commit mutated)."]
    timeouts = [r for r in rows if "timeout" in (r["b"], r["a"])]
    not_reached = [r for r in rows if r["b"] == "not reached"]
    out += ["", f"Killed by a timeout: {len(timeouts)}. Not reached by (b) (none of the "
            f"mutant's lines runs under the fuzzers): {len(not_reached)}.", ""]

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    def describe(r: dict[str, Any]) -> str:
        line = r["start"][0]
        return (f"`{r['path']}:{line}` | {r['operator'].split('/')[-1]} | "
                f"`{cell(r['before'][:90])}` | `{cell(r['after'][:90])}`")

    survivors_b = [r for r in rows if not killed(r, "b") and not r.get("equivalent")]
    out += ["## Survivors of (b)", "",
            "Each survivor of the fuzzers: equivalent (and why), or not, and what kills it. "
            "The (a) column names the first test of the rest of the suite that failed on it.", "",
            "| file:line | operator | before | after | (a) | classification |",
            "| --- | --- | --- | --- | --- | --- |"]
    for r in sorted(survivors_b, key=lambda r: (r["path"], r["start"])):
        k = key_of(r)
        why = (f"equivalent: {equivalent(r)}" if equivalent(r) else
               f"not equivalent: {MISSING[k]}" if k in MISSING else "not classified")
        new = ("; killed by the new tests" if killed(r, "extra") else "; the new tests pass") \
            if r.get("extra") else ""
        a = (f"killed: {r['a_by'] or r.get('netns_by', '')}" if killed(r, "a") else
             "survived" + (f" {r['netns_by']}" if r.get("netns_by") else "") + new)
        out.append(f"| {describe(r)} | {a.replace('|', '/')} | {why} |")
    out += ["", "## Every sampled mutant", "",
            "| # | file:line | operator | before | after | (b) | s | rest | s |"
            + (" netns | s |" if meta.get("netns") else "") + " killed by |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
            + (" --- | --- |" if meta.get("netns") else "") + " --- |"]
    for i, r in enumerate(rows, 1):
        by = r["b_by"] if killed(r, "b") else r["a_by"] or r.get("netns_by", "")
        netns = f" {r.get('netns', '')} | {r.get('netns_seconds', 0):.0f} |" if meta.get("netns") else ""
        out.append(f"| {i} | {describe(r)} | {r['b']} | {r['b_seconds']:.0f} | {r['a']} | "
                   f"{r['a_seconds']:.0f} |{netns} {cell(by)[:120]} |")
    path.write_text("\n".join(out) + "\n")


# ------------------------------------------------------------------------------ main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sample", type=int, default=60, help="mutants to draw (default 60)")
    ap.add_argument("--seed", type=int, default=11, help="seed of the draw (default 11)")
    ap.add_argument("--commit", default="HEAD", help="the commit mutated (default HEAD)")
    ap.add_argument("--results", type=Path, default=Path("/tmp/etran-mutation-results.jsonl"),
                    help="one JSON line per mutant tested; resumed from")
    ap.add_argument("--report", type=Path, default=ROOT / "docs" / "mutation-report.md")
    ap.add_argument("--list", action="store_true", help="count the mutants, test none")
    ap.add_argument("--report-only", action="store_true", help="rewrite the report from --results")
    ap.add_argument("--extra-tests", nargs="*", default=[], metavar="FILE",
                    help="test files of the checkout to run on every mutant (a) leaves alive")
    ap.add_argument("--netns", action="store_true",
                    help="add tests/netns to (a) as a last stage (on an idle machine only)")
    ap.add_argument("--timeout-factor", type=float, default=1.0,
                    help="(b)'s timeout: this times the unmutated (b) under coverage (itself about "
                         "1.5 times slower than without), plus 60 s; the rest's: twice this")
    args = ap.parse_args()

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", args.commit], check=True,
                            capture_output=True, text=True).stdout.strip()
    meta_path = args.results.with_suffix(".meta.json")
    meta: dict[str, Any] = {}
    if args.report_only:
        meta = json.loads(meta_path.read_text())
        rows_by_id = {r["id"]: r for r in map(json.loads, args.results.read_text().splitlines())}
        rows = [rows_by_id[i] for i in meta["sample_ids"]]
        write_report(args.report, meta, rows)
        return 0

    base = Path(tempfile.mkdtemp(prefix="etran-mutation-base-", dir="/tmp"))
    started = time.monotonic()
    try:
        make_copy(commit, base / "repo")
        copy = base / "repo"
        mutants = enumerate_mutants(copy)
        by_group = {g: sum(m["path"] in files for m in mutants) for g, files in GROUPS.items()}
        print(f"{len(mutants)} mutants: {by_group}", flush=True)
        if args.list:
            return 0
        order = list(mutants)
        random.Random(args.seed).shuffle(order)
        sample = order[:args.sample]       # so a run stopped early is a smaller uniform sample

        done: dict[str, dict[str, Any]] = {}
        if args.results.exists() and meta_path.exists():
            meta = json.loads(meta_path.read_text())
            if meta["commit"] == commit:       # a mutant's verdict depends on the commit only
                done = {r["id"]: r for r in map(json.loads, args.results.read_text().splitlines())}
            else:
                meta = {}
        if not meta:
            args.results.write_text("")
            print("(b) on the unmutated copy, under coverage ...", flush=True)
            lines, seconds = fuzzer_lines(copy, 3600)
            rest_verdict, rest_seconds, tail = run(
                [str(PYTHON), *PYTEST, *[a for t in FUZZERS for a in ("--deselect", t)], *REST],
                copy, 3600)
            if rest_verdict != "passed":
                sys.exit(f"the rest of the suite fails on the unmutated copy:\n{tail}")
            print(f"  (b) {seconds:.0f} s under coverage, the rest {rest_seconds:.0f} s", flush=True)
            import cosmic_ray
            meta = {"commit": commit, "date": datetime.date.today().isoformat(), "population": len(mutants),
                    "by_group": by_group,
                    "tool": getattr(cosmic_ray, "__version__", None) or _version("cosmic-ray"),
                    "baseline_b": seconds, "baseline_rest": rest_seconds,
                    "lines": {p: sorted(v) for p, v in lines.items()}}
            meta_path.write_text(json.dumps(meta))
        if args.netns and "baseline_netns" not in meta:
            verdict, meta["baseline_netns"], tail = run([str(PYTHON), *PYTEST, *NETNS], copy, 3600)
            if verdict != "passed":
                sys.exit(f"tests/netns fails on the unmutated copy:\n{tail}")
            print(f"  tests/netns {meta['baseline_netns']:.0f} s", flush=True)
        meta.update(seed=args.seed, sample=args.sample, netns=args.netns, extra=args.extra_tests,
                    timeouts=[args.timeout_factor * meta["baseline_b"] + 60,
                              2 * args.timeout_factor * meta["baseline_rest"] + 60,
                              2 * args.timeout_factor * meta.get("baseline_netns", 0) + 60])
        lines = {p: set(v) for p, v in meta["lines"].items()}
        timeouts = (meta["timeouts"][0], meta["timeouts"][1])
        if meta["netns"]:
            print("tests/netns runs on the mutants the rest leaves alive", flush=True)

        rows = []
        for i, m in enumerate(sample, 1):
            mid = mutant_id(m)
            if mid in done:
                r = done[mid]
                changed = "function" not in r          # results of an earlier version
                if changed:
                    mutate(copy, r)
                if meta["netns"] and r["a"] == "passed" and "netns" not in r:
                    netns_stage(copy, r, meta["timeouts"][2])
                    changed = True
                    print(f"[{i}/{len(sample)}] {mid}: tests/netns {r['netns']} "
                          f"{r['netns_seconds']:.0f}s {r['netns_by'][:80]}", flush=True)
                if args.extra_tests and not killed(r, "a") and not equivalent(r) and "extra" not in r:
                    extra_stage(copy, r, args.extra_tests, meta["timeouts"][1])
                    changed = True
                if changed:
                    with args.results.open("a") as f:      # the later line wins on reading
                        f.write(json.dumps(r) + "\n")
                rows.append(r)
                continue
            r = test_mutant(copy, m, lines, timeouts)
            r["id"] = mid
            if meta["netns"] and r["a"] == "passed":
                netns_stage(copy, r, meta["timeouts"][2])
            if args.extra_tests and not killed(r, "a") and not equivalent(r):
                extra_stage(copy, r, args.extra_tests, meta["timeouts"][1])
            with args.results.open("a") as f:
                f.write(json.dumps(r) + "\n")
            rows.append(r)
            print(f"[{i}/{len(sample)}] {mid} line {m['start'][0]}: (b) {r['b']} "
                  f"{r['b_seconds']:.0f}s, (a) {r['a']} {r['a_seconds']:.0f}s "
                  f"{(r['b_by'] or r['a_by'])[:80]}", flush=True)
            meta["sample_ids"] = [r["id"] for r in rows]   # the report so far, after each mutant
            meta_path.write_text(json.dumps(meta))
            write_report(args.report, meta, rows)
        meta["sample_ids"] = [r["id"] for r in rows]
        meta_path.write_text(json.dumps(meta))
        write_report(args.report, meta, rows)
        print(f"done in {(time.monotonic() - started) / 60:.0f} min; report in {args.report}")
        return 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _version(dist: str) -> str:
    from importlib.metadata import version
    return version(dist)


if __name__ == "__main__":
    sys.exit(main())

"""The peephole passes on emitted BPF (etran.backend.peephole), on hand-written instructions.

Each pass is shown doing its rewrite, and refusing it where a register it would drop is still
read, a jump enters the middle of its pattern, or a path brings a different value. The kernel
side (the verifier deletes the nops; the examples' objects load and run alike either way) is in
tests/kernel/test_peephole_loads.py.
"""
from __future__ import annotations

import struct

import pytest

from etran.backend.emit import emit_object
from etran.backend.peephole import PASSES, tighten, tighten_code
from etran.lower.irtext import module_text
from etran.lower.module import lower
from etran.pipeline import check_file, compile_program

NOP = ("ja", 0)


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, dst | src << 4, off, imm)


def mov32(d: int, imm: int) -> bytes:
    return insn(0xB4, d, imm=imm)


def mov64(d: int, s: int) -> bytes:
    return insn(0xBF, d, s)


def add32(d: int, imm: int) -> bytes:
    return insn(0x04, d, imm=imm)


def add64(d: int, imm: int) -> bytes:
    return insn(0x07, d, imm=imm)


def zext(d: int) -> bytes:
    return insn(0xBC, d, d)


def jeq(d: int, imm: int, off: int) -> bytes:
    return insn(0x15, d, off=off, imm=imm)


def jne(d: int, imm: int, off: int) -> bytes:
    return insn(0x55, d, off=off, imm=imm)


def jgt_reg(d: int, s: int, off: int) -> bytes:
    return insn(0x2D, d, s, off=off)


def ja(off: int) -> bytes:
    return insn(0x05, off=off)


def ldx32(d: int, s: int, off: int) -> bytes:
    return insn(0x61, d, s, off=off)


def ldx64(d: int, s: int, off: int) -> bytes:
    return insn(0x79, d, s, off=off)


def call(helper: int) -> bytes:
    return insn(0x85, imm=helper)


EXIT = insn(0x95)
NOP_INSN = ja(0)


def run(*code: bytes, program: bool = True, only: str | None = None) -> tuple[list[bytes], int]:
    """The instructions after the passes (`only`: that one alone), as 8-byte slots."""
    out, changed = tighten_code(b"".join(code), program, passes=(only,) if only else tuple(PASSES))
    return [out[i:i + 8] for i in range(0, len(out), 8)], changed


# r0 = lookup(); w1 = (r0 == NULL); if w1 != 0 goto out; ...; out: w0 = 2; exit
NULL_TEST = [call(1), mov32(1, 1), jeq(0, 0, 1), mov32(1, 0), jne(1, 0, 2),
             mov32(0, 1), EXIT, mov32(0, 2), EXIT]


def test_a_materialised_null_test_becomes_the_jump_itself() -> None:
    out, changed = run(*NULL_TEST)
    assert changed == 3
    # the null test jumps straight to `out` (index 7): from index 1, off 5
    assert out[1] == jeq(0, 0, 5) and out[2:5] == [NOP_INSN] * 3
    assert out[5:] == NULL_TEST[5:]


def test_a_null_test_whose_value_is_tested_for_zero_jumps_on_the_negated_test() -> None:
    # if w1 == 0 goto out: jumps when r0 was not null
    code = NULL_TEST[:4] + [jeq(1, 0, 2)] + NULL_TEST[5:]
    out, changed = run(*code, only="null tests")
    assert changed == 3 and out[1] == jne(0, 0, 5)


def test_instructions_scheduled_between_a_null_test_and_its_use_move_up() -> None:
    # `w7 = 2` and a reload from the stack sit between the 0/1 value and its test
    code = [call(1), mov32(1, 1), jeq(0, 0, 1), mov32(1, 0), mov32(7, 2), ldx64(2, 10, -24),
            jne(1, 0, 2), mov32(0, 1), EXIT, mov64(0, 7), EXIT]
    out, changed = run(*code, only="null tests")
    assert changed == 3
    assert out[1:4] == [mov32(7, 2), ldx64(2, 10, -24), jeq(0, 0, 5)]  # to index 9
    assert out[4:7] == [NOP_INSN] * 3 and out[7:] == code[7:]


def test_an_instruction_that_reads_the_tested_pointer_does_not_move() -> None:
    # `r2 = *(u8 *)(r0 + 0)` before the null test would be refused by the verifier
    code = [call(1), mov32(1, 1), jeq(0, 0, 1), mov32(1, 0), insn(0x71, 2, 0), jne(1, 0, 2),
            mov32(0, 1), EXIT, mov64(0, 7), EXIT]
    out, changed = run(*code, only="null tests")
    assert changed == 0 and out == code


def test_a_null_test_whose_value_is_read_later_is_kept() -> None:
    # the fall-through returns w1 itself: the 0/1 value is needed
    code = NULL_TEST[:5] + [mov64(0, 1), EXIT, mov32(0, 2), EXIT]
    out, changed = run(*code, only="null tests")
    assert changed == 0 and out == code


def test_a_null_test_entered_in_its_middle_is_kept() -> None:
    # a jump from before lands on `w1 = 0`
    code = [call(1), jeq(0, 7, 3), *NULL_TEST[1:]]
    out, changed = run(*code, only="null tests")
    assert changed == 0 and out == code


def test_a_branch_over_a_goto_is_inverted() -> None:
    code = [ldx64(2, 1, 0), jgt_reg(2, 3, 1), ja(2), mov32(0, 1), EXIT, mov32(0, 2), EXIT]
    out, changed = run(*code, program=False, only="branches over gotos")
    assert changed == 1
    assert out[1] == insn(0xBD, 2, 3, off=3) and out[2] == NOP_INSN  # if r2 <= r3 goto 5


def test_a_goto_that_is_also_a_jump_target_is_kept() -> None:
    code = [ldx64(2, 1, 0), jeq(2, 5, 1), jgt_reg(2, 3, 1), ja(2), mov32(0, 1), EXIT, mov32(0, 2), EXIT]
    out, changed = run(*code, program=False, only="branches over gotos")
    assert changed == 0 and out == code


def test_a_zero_extension_is_kept() -> None:
    # to the verifier `w2 = w2` copies the 32-bit bounds the JMP32 proved into the 64-bit ones
    code = [ldx64(2, 1, 0), add32(2, 14), insn(0x26, 2, off=1, imm=100), zext(2), mov64(0, 2), EXIT]
    out, changed = run(*code, program=False)
    assert changed == 0 and out == code


def test_a_reloaded_packet_bound_is_a_nop_until_a_call() -> None:
    code = [ldx32(2, 1, 0), ldx32(3, 1, 4), mov64(4, 2), add64(4, 14), jgt_reg(4, 3, 5),
            ldx32(2, 1, 0), ldx32(3, 1, 4), mov64(6, 1), call(5), ldx32(3, 6, 4),
            mov32(0, 2), EXIT]
    out, changed = run(*code, only="context reloads")
    # data_end reloaded into r3 before the call: a nop; data into r2 too (nothing changed it);
    # after the call r3 is clobbered and the field may have moved: kept
    assert changed == 2 and out[5] == NOP_INSN and out[6] == NOP_INSN and out[9] == code[9]


def test_a_reload_after_a_store_into_the_context_is_kept() -> None:
    # a tc program may write some of its context's fields (skb->mark): the value may differ
    code = [ldx32(3, 1, 8), insn(0x63, 1, 4, off=8), ldx32(3, 1, 8), mov32(0, 2), EXIT]
    out, changed = run(*code, only="context reloads")
    assert changed == 0 and out == code


def test_a_reload_after_the_register_changed_on_one_path_is_kept() -> None:
    code = [ldx32(3, 1, 4), jeq(3, 0, 1), add64(3, 8), ldx32(3, 1, 4), mov32(0, 2), EXIT]
    out, changed = run(*code, only="context reloads")
    assert changed == 0 and out == code


def test_a_subprogram_s_r1_is_not_the_context() -> None:
    code = [ldx32(3, 1, 4), jeq(3, 0, 1), ldx32(3, 1, 4), mov32(0, 2), EXIT]
    assert run(*code, only="context reloads")[1] == 1
    assert run(*code, program=False, only="context reloads")[1] == 0


def st_imm(size: int, d: int, off: int, imm: int) -> bytes:
    return insn(0x62 | size, d, off=off, imm=imm)


def stx(size: int, d: int, s: int, off: int) -> bytes:
    return insn(0x63 | size, d, s, off=off)


DW, W = 0x18, 0x00


def test_a_constant_stored_through_a_register_becomes_an_immediate_store() -> None:
    code = [mov32(1, 0), stx(W, 10, 1, -8), insn(0xB7, 1, imm=7), stx(DW, 10, 1, -16), mov32(0, 2), EXIT]
    out, changed = run(*code, only="immediate stores")
    assert changed == 2
    assert out[:4] == [st_imm(W, 10, -8, 0), NOP_INSN, st_imm(DW, 10, -16, 7), NOP_INSN]


def test_a_constant_still_needed_after_its_store_stays_in_its_register() -> None:
    code = [mov32(6, 0), stx(W, 10, 6, -8), mov64(0, 6), EXIT]
    out, changed = run(*code, only="immediate stores")
    assert changed == 0 and out == code


def test_a_negative_32_bit_constant_is_not_stored_as_a_sign_extended_64_bit_one() -> None:
    # `w1 = -1` leaves 0x00000000ffffffff; a 64-bit store of the immediate -1 would write 2**64-1
    code = [mov32(1, -1), stx(DW, 10, 1, -8), mov32(0, 2), EXIT]
    out, changed = run(*code, only="immediate stores")
    assert changed == 0 and out == code
    code = [mov32(1, -1), stx(W, 10, 1, -8), mov32(0, 2), EXIT]
    out, changed = run(*code, only="immediate stores")
    assert changed == 1 and out[0] == st_imm(W, 10, -8, -1)


def test_a_load_nothing_reads_is_dropped() -> None:
    # the packet's start loaded and overwritten at once (what LLVM leaves of a volatile load)
    code = [mov32(0, 0), ldx32(8, 1, 0), ldx32(8, 1, 4), insn(0x0F, 0, 8), jeq(0, 10, 1), ja(-5), EXIT]
    out, changed = run(*code, program=False, only="dead definitions")
    assert changed == 1 and out[1] == NOP_INSN and out[2] == code[2]


def test_a_definition_read_on_one_path_is_kept() -> None:
    code = [ldx32(2, 1, 0), jeq(3, 0, 1), mov64(0, 2), EXIT]
    out, changed = run(*code, program=False, only="dead definitions")
    assert changed == 0 and out == code


def test_a_call_reads_only_its_helper_s_arguments() -> None:
    # r2 set before bpf_ktime_get_ns (no arguments) is dead; before map_lookup_elem it is read
    code = [mov32(2, 0), call(5), EXIT]
    assert run(*code, only="dead definitions")[1] == 1
    code = [mov32(2, 0), call(1), EXIT]
    assert run(*code, only="dead definitions")[1] == 0


def test_tighten_changes_only_the_instructions_of_a_real_object() -> None:
    checked = check_file("bench/c/counter.py")
    plain = compile_program(checked)
    module, _ = lower(checked)
    untightened = emit_object(module_text(module), tighten=False)
    tightened, removed = tighten(untightened)
    assert tightened == plain.elf and removed >= 3
    assert len(tightened) == len(untightened)
    differing = [i for i in range(0, len(tightened), 8) if tightened[i:i + 8] != untightened[i:i + 8]]
    assert len(differing) >= removed


@pytest.mark.parametrize("value, cond, jumped", [(1, 0x55, True), (0, 0x55, False), (1, 0x15, False)])
def test_the_null_test_s_direction_follows_the_constants(value: int, cond: int, jumped: bool) -> None:
    # w1 = value when r0 is null, 1 - value otherwise; `if w1 <cond> 0 goto out`
    code = [call(1), mov32(1, value), jeq(0, 0, 1), mov32(1, 1 - value), insn(cond, 1, off=2),
            mov32(0, 1), EXIT, mov32(0, 2), EXIT]
    out, changed = run(*code, only="null tests")
    assert changed == 3
    assert out[1] == (jeq(0, 0, 5) if jumped else jne(0, 0, 5))



def ldx8(d: int, s: int, off: int) -> bytes:
    return insn(0x71, d, s, off=off)


def jgt32(d: int, imm: int, off: int) -> bytes:
    return insn(0x26, d, off=off, imm=imm)


# r2 = a byte of the packet; w2 = (w2 << 2 & 60) + 14 (a header's length and the
# Ethernet header's); if w2 > 65515 goto out (the view's offset limit); ...; out: exit
MASKED_OFFSET = [ldx8(2, 1, 0), insn(0x64, 2, imm=2), insn(0x54, 2, imm=60), add32(2, 14),
                 jgt32(2, 65515, 3), jeq(3, 0, 2), mov32(0, 1), EXIT, mov32(0, 2), EXIT]


def test_a_test_the_register_s_range_decides_is_dropped() -> None:
    out, changed = run(*MASKED_OFFSET, program=False, only="decided branches")
    assert changed == 1 and out[4] == NOP_INSN
    assert out[:4] + out[5:] == MASKED_OFFSET[:4] + MASKED_OFFSET[5:]


def test_a_test_that_always_jumps_becomes_a_goto() -> None:
    # w2 <= 74 < 100: `if w2 < 100 goto out` always jumps (its fall-through is reached by
    # another jump too)
    code = MASKED_OFFSET[:4] + [jeq(3, 0, 1), insn(0xA6, 2, off=2, imm=100), mov32(0, 1), EXIT,
                                mov32(0, 2), EXIT]
    out, changed = run(*code, program=False, only="decided branches")
    assert changed == 0 and out[5] == ja(2) and out[:5] + out[6:] == code[:5] + code[6:]


def _masked(at: int, replacement: bytes) -> list[bytes]:
    code = list(MASKED_OFFSET)
    code[at] = replacement
    return code


# after `r2 >>= 31`, `if r2 > 1` is decided only if r2 held 32 bits at most
TOP_BITS = [insn(0x77, 2, imm=31), insn(0x25, 2, off=3, imm=1), jeq(3, 0, 2), mov32(0, 1), EXIT,
            mov32(0, 2), EXIT]


@pytest.mark.parametrize("code", [
    _masked(3, add32(2, -15)),        # 14 - 15 wraps: the range is all of u32
    _masked(2, insn(0x44, 2, imm=60)),   # `|=` is not followed: any value
    [ldx32(2, 1, 0), *TOP_BITS],      # a 32-bit load may be the context's data pointer
    [ldx8(2, 1, 0), insn(0xDC, 2, imm=64), *TOP_BITS],  # be64 (32-bit class): any 64-bit value
], ids=["wraps", "or", "u32 load", "byte swap"])
def test_a_range_not_proven_keeps_the_test(code: list[bytes]) -> None:
    out, changed = run(*code, program=False, only="decided branches")
    assert changed == 0 and out == code


def test_a_u16_load_shifted_is_bounded() -> None:
    code = [insn(0x69, 2, 1, off=0), *TOP_BITS]
    assert run(*code, program=False, only="decided branches")[1] == 1


def test_a_test_whose_other_side_only_it_reaches_is_kept() -> None:
    # `out` (w0 = 1; exit) is reached only by the jump: dropping it leaves code unreachable
    code = MASKED_OFFSET[:4] + [jgt32(2, 65515, 2), mov32(0, 2), EXIT, mov32(0, 1), EXIT]
    out, changed = run(*code, program=False, only="decided branches")
    assert changed == 0 and out == code


def test_ranges_are_joined_where_paths_meet_and_widened_in_loops() -> None:
    # one path masks w2 to 60, the other leaves it 0..255: `if w2 > 255` is still decided,
    # `if w2 > 60` is not
    join = [ldx8(2, 1, 0), jeq(3, 0, 1), insn(0x54, 2, imm=60), jgt32(2, 255, 2), jgt32(2, 60, 1),
            mov32(0, 1), EXIT]
    out, changed = run(*join, program=False, only="decided branches")
    assert changed == 1 and out[3] == NOP_INSN and out[4] == join[4]
    # w2 = 0; loop: w2 += 1; if w2 < 10 goto loop: the counter grows past any bound here
    loop = [mov32(2, 0), add32(2, 1), insn(0xA6, 2, off=-2, imm=10), jgt32(2, 100, 1), mov32(0, 1),
            EXIT]
    out, changed = run(*loop, program=False, only="decided branches")
    assert changed == 0 and out == loop


@pytest.mark.parametrize("code, decided", [
    (insn(0x15, 2, off=1, imm=75), True),     # == outside [14, 74]: never
    (insn(0x15, 2, off=1, imm=40), False),    # == inside: depends
    (insn(0x65, 2, off=1, imm=80), True),     # signed >, values all non-negative
    (insn(0x45, 2, off=1, imm=1), False),     # jset of a range: not followed
])
def test_each_kind_of_test(code: bytes, decided: bool) -> None:
    prefix = MASKED_OFFSET[:4]
    full = [*prefix, code, jeq(3, 0, 1), mov32(0, 1), EXIT]
    _, changed = run(*full, program=False, only="decided branches")
    assert changed == (1 if decided else 0)


def test_an_operation_with_a_register_is_not_taken_for_one_with_an_immediate() -> None:
    # `w2 &= w0` (src r0, the X form) is not `w2 &= 0`
    code = [ldx8(2, 1, 0), ldx64(0, 1, 8), insn(0x5C, 2, 0), jgt32(2, 0, 2), jeq(3, 0, 1),
            mov32(0, 1), EXIT]
    out, changed = run(*code, program=False, only="decided branches")
    assert changed == 0 and out == code


def test_a_decided_test_that_is_the_only_way_into_a_loop_is_kept() -> None:
    # w2 = 3, so `if w2 < 5 goto out` always jumps, over a loop whose head (index 3) is also
    # its back edge's target: made a goto, it would leave the loop reached by nothing but
    # itself (the verifier refuses unreachable code)
    code = [ldx8(3, 1, 0), mov32(2, 3), insn(0xA6, 2, off=3, imm=5),
            add32(3, 1), insn(0xA6, 3, off=-2, imm=100), ja(0),
            mov32(0, 1), EXIT]
    out, changed = run(*code, program=False, only="decided branches")
    assert changed == 0 and out == code


def test_two_decided_tests_into_one_block_keep_one_way_in() -> None:
    # both tests never jump, both to `out`, reached by nothing else: one of them stays
    code = [ldx8(2, 1, 0), jgt32(2, 300, 3), jgt32(2, 400, 2), mov32(0, 1), EXIT,
            mov32(0, 2), EXIT]
    out, changed = run(*code, program=False, only="decided branches")
    assert changed == 1 and NOP_INSN in out[1:3] and (code[1] in out[1:3] or code[2] in out[1:3])


def test_a_left_shift_is_bounded_only_while_the_top_bit_stays_clear() -> None:
    # as the verifier's scalar32_min_max_lsh: w2 in [0, 255] << 24 may set bit 31, so
    # it is any value; << 23 is bounded by 2 ** 31 - 2 ** 23
    for count, decided in ((24, False), (23, True)):
        code = [ldx8(2, 1, 0), insn(0x64, 2, imm=count), jgt32(2, 0x7FFFFFFF, 2), jeq(3, 0, 1),
                mov32(0, 1), EXIT]
        assert run(*code, program=False, only="decided branches")[1] == (1 if decided else 0)

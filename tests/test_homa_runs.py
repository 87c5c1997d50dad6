"""`etran.homa`'s runs of packets to ask for again: from the data path's receive bitmap
(RESEND for what never arrived) and against the library's own copy (REPAIR for what the
data path took and the AF_XDP socket's full ring lost)."""
from __future__ import annotations

import pytest

from etran.homa import wire
from etran.homa.stack import lost_runs, missing_runs

P = wire.PAYLOAD


def bitmap(taken: set[int]) -> list[int]:
    words = [0] * 12
    for i in taken:
        words[i >> 6] |= 1 << (i & 63)
    return words


def test_missing_runs_are_the_clear_bits_below_the_grant() -> None:
    length = 10 * P + 100                                # 11 packets, the last 100 bytes
    taken = set(range(11)) - {2, 3, 7, 10}
    assert missing_runs(bitmap(taken), length, length) == \
        [(2 * P, 2 * P), (7 * P, P), (10 * P, 100)]
    assert missing_runs(bitmap(taken), 5 * P, length) == [(2 * P, 2 * P)]


@pytest.mark.parametrize(("have", "runs"), [
    (set(range(200)), []),
    (set(range(200)) - {5}, [(5 * P, P)]),
    # a run across a word boundary is split there: gen clears one word's bits at a time
    (set(range(200)) - set(range(60, 70)), [(60 * P, 4 * P), (64 * P, 6 * P)]),
    (set(), [(0, 64 * P), (64 * P, 64 * P), (128 * P, 64 * P), (192 * P, 7 * P + 500)]),
])
def test_lost_runs_are_taken_there_and_missing_here(have: set[int],
                                                    runs: list[tuple[int, int]]) -> None:
    length = 199 * P + 500                               # 200 packets
    assert lost_runs(bitmap(set(range(200))), [i in have for i in range(200)], length) == runs


def test_a_packet_the_data_path_never_took_is_not_lost_but_missing() -> None:
    length = 4 * P
    taken = {0, 1, 3}
    have = [True, False, False, False]
    assert lost_runs(bitmap(taken), have, length) == [(P, P), (3 * P, P)]
    assert missing_runs(bitmap(taken), length, length) == [(2 * P, P)]

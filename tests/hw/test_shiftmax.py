"""Shiftmax engine (`cdsl.hw.shiftmax`) against the integer reference `shiftmax`, element by element,
in Amaranth's simulator: rows of different lengths back to back (1 element, 2, 17, the maximum),
all-equal scores, extreme scores (the exponent cut, the whole input range in one row), several x0
(the grid of the scores) and score widths, random stalls on both sides; and the cycle model
(3 n + Q per row) with the input always valid and the output always ready."""

from __future__ import annotations

import random

import pytest
import torch
from tb.row_stream import run_rows

from cdsl.contract.ref.int_softmax import shiftmax
from cdsl.hw.shiftmax import Shiftmax, recip_bits, row_cycles


def expected(row, x0):
    return shiftmax(torch.tensor([row]), x0)[0].tolist()


def cases(rng, in_bits, x0, max_len):
    lo, hi = -(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1
    rows = [
        [rng.randint(lo, hi)],  # one element: softmax 1.0 (127 or 128: the reciprocal rounds down)
        [5, 5],
        [hi] * max_len,  # all equal, full length
        [lo] * 3,
        [hi, lo] + [rng.randint(lo, hi) for _ in range(max_len - 2)],  # the exponent cut
        [0] * 17 if max_len >= 17 else [0] * max_len,
        [hi - j for j in range(min(max_len, 40))],  # a slope across the exponent's steps
    ]
    rows += [[rng.randint(lo, hi) for _ in range(rng.randint(1, max_len))] for _ in range(6)]
    # scores near each other on the grid of x0 (so q and r both vary)
    rows += [[rng.randint(max(lo, -16 * abs(x0)), 0) for _ in range(rng.randint(2, max_len))] for _ in range(3)]
    return [r for r in rows if len(r) <= max_len]


CONFIGS = [  # (in_bits, x0, max_len)
    (8, -1, 17),
    (8, -37, 17),
    (16, -300, 33),
    (20, -4095, 24),
]


@pytest.mark.parametrize("in_bits,x0,max_len", CONFIGS)
def test_rows_equal_the_reference_and_cycles_the_model(in_bits, x0, max_len):
    seed = 1000 + in_bits + max_len
    rng = random.Random(seed)
    rows = cases(rng, in_bits, x0, max_len)
    dut = Shiftmax(in_bits=in_bits, x0=x0, max_len=max_len)
    got, lasts, cycles = run_rows(dut, rows, seed=seed)
    for r, row in enumerate(rows):
        assert lasts[r] == [0] * (len(row) - 1) + [1], f"row {r}: `last` misplaced (seed={seed})"
        assert got[r] == expected(row, x0), f"row {r} (len {len(row)}) differs (seed={seed}): {row[:8]}..."
        assert cycles[r] == row_cycles(len(row), x0), f"row {r}: {cycles[r]} cycles, model {row_cycles(len(row), x0)}"


@pytest.mark.parametrize("in_bits,x0,max_len", CONFIGS[1:3])
def test_stalls_on_both_sides(in_bits, x0, max_len):
    seed = 77 + in_bits
    rows = cases(random.Random(seed), in_bits, x0, max_len)
    got, _, _ = run_rows(Shiftmax(in_bits=in_bits, x0=x0, max_len=max_len), rows, seed=seed,
                      in_stall=0.4, out_stall=0.4)
    for r, row in enumerate(rows):
        assert got[r] == expected(row, x0), f"row {r} differs under stalls (seed={seed})"


def test_case_corners_are_what_they_claim():
    rows = cases(random.Random(0), 8, -37, 17)
    assert expected(rows[0], -37) == [127] and expected(rows[0], -1) == [128]  # one element
    assert expected(rows[2], -37) == [expected(rows[2], -37)[0]] * 17  # all equal
    row = rows[4]  # the exponent cut: the minimum's e is the cut's
    assert min(expected(row, -37)) == 0


def test_recip_bits_bounds_the_reciprocal():
    # Q is exact: the largest f (a one-element row, s = e_max) needs exactly Q bits
    for x0 in (-1, -2, -37, -300, -4095, -(1 << 30)):
        s_min = (-x0) << 15
        assert ((1 << 62) // s_min).bit_length() == recip_bits(x0)
        assert ((1 << 62) // s_min) < (1 << recip_bits(x0))

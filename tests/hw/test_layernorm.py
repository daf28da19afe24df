"""I-LayerNorm engine (`cdsl.hw.layernorm`) against the integer reference `int_layernorm`, element by
element, in Amaranth's simulator: tokens back to back (one inference = several tokens, `last` only
on the final code), a constant token (zero variance: std clamps to 1), all max, all min, alternating
extremes, one hot, random; D = 1, a D that is a multiple of nothing (7), 32, 48; 8- and 10-bit codes;
random stalls on both sides; and the cycle model per token with the input always valid and the
output always ready."""

from __future__ import annotations

import random

import pytest
import torch
from tb.row_stream import run_rows

from cdsl.contract.ref.int_layernorm import int_layernorm
from cdsl.contract.ref.requant import quantize_multiplier
from cdsl.hw.layernorm import LayerNorm


def make(rng, dim, in_bits):
    gamma = [rng.randint(-(1 << 15), (1 << 15) - 1) if rng.random() < 0.2 else rng.randint(-300, 300)
             for _ in range(dim)]
    beta = [rng.randint(-(1 << 20), 1 << 20) for _ in range(dim)]
    m, s = quantize_multiplier(rng.uniform(2 ** -16, 2 ** -12))
    return dict(dim=dim, in_bits=in_bits, gamma=gamma, beta=beta, multiplier=m, shift=s, qmin=-128, qmax=127,
                out_bits=8, out_signed=True)


def tokens(rng, dim, in_bits):
    lo, hi = -(1 << (in_bits - 1)) + 1, (1 << (in_bits - 1)) - 1  # the reference takes |x| < 2**(bits-1)
    rows = [
        [rng.randint(lo, hi)] * dim,  # constant: zero variance
        [hi] * dim,
        [lo] * dim,
        [hi if j % 2 else lo for j in range(dim)],
        [hi if j == dim // 2 else 0 for j in range(dim)],  # one hot
        [0] * dim,
        [rng.randint(-3, 3) for _ in range(dim)],  # small spread
    ]
    rows += [[rng.randint(lo, hi) for _ in range(dim)] for _ in range(5)]
    return rows


def expected(p, row):
    return int_layernorm(torch.tensor([row]), torch.tensor(p["gamma"]), torch.tensor(p["beta"]), p["multiplier"],
                         p["shift"], p["qmin"], p["qmax"])[0].tolist()


CONFIGS = [(1, 8), (7, 8), (32, 8), (48, 10)]


@pytest.mark.parametrize("dim,in_bits", CONFIGS)
def test_tokens_equal_the_reference_and_cycles_the_model(dim, in_bits):
    seed = 500 + dim * 16 + in_bits
    rng = random.Random(seed)
    p = make(rng, dim, in_bits)
    rows = tokens(rng, dim, in_bits)
    dut = LayerNorm(**p)
    lasts = [r == len(rows) - 1 for r in range(len(rows))]  # one inference: `last` on its final code only
    got, got_lasts, cycles = run_rows(dut, rows, lasts=lasts, seed=seed)
    model = dut.timing.token_cycles()
    for r, row in enumerate(rows):
        assert got[r] == expected(p, row), f"token {r} differs (seed={seed}): {row[:6]}..."
        assert got_lasts[r] == [0] * (dim - 1) + [int(lasts[r])], f"token {r}: `last` misplaced (seed={seed})"
        assert cycles[r] == model, f"token {r}: {cycles[r]} cycles, model {model} (seed={seed})"


@pytest.mark.parametrize("dim,in_bits", CONFIGS[1:3])
def test_stalls_on_both_sides(dim, in_bits):
    seed = 900 + dim
    rng = random.Random(seed)
    p = make(rng, dim, in_bits)
    rows = tokens(rng, dim, in_bits)
    got, _, _ = run_rows(LayerNorm(**p), rows, seed=seed, in_stall=0.4, out_stall=0.6)
    for r, row in enumerate(rows):
        assert got[r] == expected(p, row), f"token {r} differs under stalls (seed={seed})"


def test_cases_reach_the_corners():
    rng = random.Random(3)
    p = make(rng, 32, 8)
    rows = tokens(rng, 32, 8)
    outs = [expected(p, r) for r in rows]
    flat = [v for o in outs for v in o]
    assert -128 in flat and 127 in flat  # saturation on both sides
    assert len(set(map(tuple, outs))) > 5  # the tokens really differ after normalization

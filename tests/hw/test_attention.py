"""Attention engine (`cdsl.hw.attention`) against the encoder's integer attention written out with
the contract's kernels (scores q_h k_h^T per head, `shiftmax`, p v_h, `requantize` per channel),
element by element, in Amaranth's simulator: inferences of different token counts back to back (1
token, 2, 5, the maximum), all-equal scores (identical keys), extreme q/k/v (all max, all min:
scores at the ends of their range), random; per-channel and per-tensor requantization; 1, 2 and 3
heads; stalls; and the cycle model per inference with the input always valid, output always ready."""

from __future__ import annotations

import random

import pytest
import torch
from tb.row_stream import run_rows

from cdsl.contract.ref.int_softmax import shiftmax
from cdsl.contract.ref.requant import quantize_multiplier, requantize
from cdsl.hw.attention import Attention

CONFIGS = [  # (dim, heads, max_tokens, x0, per_channel)
    (8, 2, 5, -20, True),
    (6, 3, 4, -3, False),
    (4, 1, 7, -150, True),
]


def make(rng, dim, heads, max_tokens, x0, per_channel):
    reals = [rng.uniform(2 ** -10, 2 ** -6) for _ in range(dim if per_channel else 1)]
    ms = [quantize_multiplier(r) for r in reals]
    return dict(dim=dim, heads=heads, max_tokens=max_tokens, in_bits=8, x0=x0,
                multipliers=[m for m, _ in ms], shifts=[s for _, s in ms], qmin=-128, qmax=127, out_bits=8,
                out_signed=True)


def expected(p, qkv):
    """qkv: int64 [n, 3D] -> [n, D], written out from the contract's kernels."""
    d, h = p["dim"], p["heads"]
    hd = d // h
    q, k, v = qkv[:, :d], qkv[:, d:2 * d], qkv[:, 2 * d:]
    out = []
    for head in range(h):
        sl = slice(head * hd, (head + 1) * hd)
        att = shiftmax(q[:, sl] @ k[:, sl].T, p["x0"])
        out.append(att @ v[:, sl])
    acc = torch.cat(out, dim=1)
    mult = torch.tensor(p["multipliers"]).reshape(1, -1)
    shift = torch.tensor(p["shifts"]).reshape(1, -1)
    return requantize(acc, mult, shift, p["qmin"], p["qmax"])


def inferences(rng, dim, max_tokens):
    def rand(n):
        return torch.tensor([[rng.randint(-128, 127) for _ in range(3 * dim)] for _ in range(n)])

    same_keys = rand(max_tokens)
    same_keys[:, dim:2 * dim] = same_keys[0, dim:2 * dim]  # every score of a row equal
    return [rand(1), rand(2), torch.full((max_tokens, 3 * dim), 127), torch.full((2, 3 * dim), -128), same_keys,
            rand(max_tokens), rand(max(1, max_tokens - 2))]


@pytest.mark.parametrize("dim,heads,max_tokens,x0,per_channel", CONFIGS)
def test_inferences_equal_the_reference_and_cycles_the_model(dim, heads, max_tokens, x0, per_channel):
    seed = 31 * dim + heads + max_tokens
    rng = random.Random(seed)
    p = make(rng, dim, heads, max_tokens, x0, per_channel)
    cases = inferences(rng, dim, max_tokens)
    dut = Attention(**p)
    rows = [c.reshape(-1).tolist() for c in cases]
    got, lasts, cycles = run_rows(dut, rows, out_lens=[len(c) * dim for c in cases], seed=seed)
    for r, case in enumerate(cases):
        n = len(case)
        assert got[r] == expected(p, case).reshape(-1).tolist(), f"inference {r} ({n} tokens) differs (seed={seed})"
        assert lasts[r] == [0] * (n * dim - 1) + [1], f"inference {r}: `last` misplaced (seed={seed})"
        assert cycles[r] == dut.timing.cycles(n), f"inference {r}: {cycles[r]} cycles, model {dut.timing.cycles(n)}"


@pytest.mark.parametrize("dim,heads,max_tokens,x0,per_channel", CONFIGS[:2])
def test_stalls_on_both_sides(dim, heads, max_tokens, x0, per_channel):
    seed = 7 * dim + heads
    rng = random.Random(seed)
    p = make(rng, dim, heads, max_tokens, x0, per_channel)
    cases = inferences(rng, dim, max_tokens)
    got, lasts, _ = run_rows(Attention(**p), [c.reshape(-1).tolist() for c in cases],
                             out_lens=[len(c) * dim for c in cases], seed=seed, in_stall=0.4, out_stall=0.7)
    for r, case in enumerate(cases):
        assert got[r] == expected(p, case).reshape(-1).tolist(), f"inference {r} differs under stalls (seed={seed})"
        assert lasts[r][-1] == 1


def test_cases_reach_the_corners():
    rng = random.Random(0)
    p = make(rng, 8, 2, 5, -20, True)
    cases = inferences(rng, 8, 5)
    same = cases[4]
    d = 8
    for head in range(2):
        sl = slice(head * 4, head * 4 + 4)
        scores = same[:, :d][:, sl] @ same[:, d:2 * d][:, sl].T
        assert bool((scores == scores[:, :1]).all())  # all-equal rows
    flat = torch.cat([expected(p, c).reshape(-1) for c in cases])
    assert int(flat.max()) == 127 and int(flat.min()) == -128  # saturation on both sides


def test_many_lanes_elaborate():
    """A head of 1,100 features on 1,100 lanes: the score's lane sum is built in chains (`chained_sum`);
    one Python expression over every lane overflowed Amaranth's recursion (a RecursionError traceback)."""
    from amaranth.hdl import Fragment

    p = make(random.Random(1), 1100, 1, 2, -20, False)
    Fragment.get(Attention(**p, lanes=1100), None)

"""i-GELU engine (`cdsl.hw.gelu`) against `requantize(int_gelu(q))`, element by element, in Amaranth's
simulator: every code of the input width (8 and 6 bits) in one stream, cut below, at and above the
code range, several c and requantizations (including saturation), `last` carried, stalls; cycles
n + 2 with the input always valid and the output always ready."""

from __future__ import annotations

import random

import pytest
import torch
from tb.row_stream import run_rows

from cdsl.contract.ref.int_gelu import gelu_constants, int_gelu
from cdsl.contract.ref.requant import quantize_multiplier, requantize
from cdsl.hw.gelu import Gelu, element_cycles


def params(in_bits, scale, out_scale):
    cut, c = gelu_constants(scale)
    m, s = quantize_multiplier(scale / (2.0 * c) / out_scale)
    return dict(in_bits=in_bits, cut=cut, c=c, multiplier=m, shift=s, qmin=-128, qmax=127, out_bits=8, out_signed=True)


CONFIGS = [  # (in_bits, input scale, output scale): cut inside the 8-bit range, beyond it, tiny outputs (saturation)
    (8, 0.05, 0.02),
    (8, 0.005, 0.002),
    (8, 0.2, 0.001),
    (6, 0.1, 0.05),
]


def expected(p, codes):
    y = int_gelu(torch.tensor(codes), p["cut"], p["c"])
    return requantize(y, p["multiplier"], p["shift"], p["qmin"], p["qmax"]).tolist()


@pytest.mark.parametrize("in_bits,scale,out_scale", CONFIGS)
def test_every_code_equals_the_reference(in_bits, scale, out_scale):
    p = params(in_bits, scale, out_scale)
    lo, hi = -(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1
    codes = list(range(lo, hi + 1))
    seed = in_bits * 1000 + int(1000 * scale)
    rng = random.Random(seed)
    rng.shuffle(codes)
    rows = [codes[:17], codes[17:]]  # two inferences of different lengths
    got, lasts, cycles = run_rows(Gelu(**p), rows, seed=seed)
    for r, row in enumerate(rows):
        assert got[r] == expected(p, row), f"inference {r} differs (seed={seed}, cut={p['cut']}, c={p['c']})"
        assert lasts[r] == [0] * (len(row) - 1) + [1]
    assert cycles[0] == element_cycles(17)
    got, _, _ = run_rows(Gelu(**p), rows, seed=seed, in_stall=0.5, out_stall=0.5)
    assert got == [expected(p, row) for row in rows], f"differs under stalls (seed={seed})"


def test_configs_reach_their_corners():
    p = params(8, 0.005, 0.002)
    assert p["cut"] > 127  # the cut lies beyond the codes: no saturation of erf
    p = params(8, 0.05, 0.02)
    assert p["cut"] < 127
    out = expected(params(8, 0.2, 0.001), list(range(-128, 128)))
    assert 127 in out and -128 in out  # saturates on both sides (GELU reaches -0.17: -170 output units)

"""The integer ViT kernels (Shiftmax, i-GELU, I-LayerNorm with an exact integer square root) against
their float functions, over their whole input range, with the error bounds README states.

Each bound is a measured maximum (README: "Integer ViT kernels") rounded up; a test fails if a kernel
gets worse. The exact parts (isqrt, the integer steps) are checked against Python integers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cdsl.contract.ref.int_gelu import gelu_constants, gelu_scale, int_gelu
from cdsl.contract.ref.int_layernorm import FRAC_BITS, int_layernorm, isqrt, normalize
from cdsl.contract.ref.int_softmax import OUT_BITS, shiftmax, shiftmax_x0
from tb.plain_vit import shiftmax_python

SOFTMAX_BOUND = 0.03  # |shiftmax / 2**7 - softmax|, probabilities, input scale <= 2**-6
SOFTMAX_BOUND_COARSE = 0.045  # the same for input scales up to 0.1 (|x0| down to 10)
GELU_BOUND = 0.035  # |i-GELU - GELU| in real units, 8-bit inputs, scales 2**-7 .. 2**-2
LAYERNORM_BOUND = 0.0025  # |n / 2**8 - (x - mean) / std|, normalized units

SCALES_SOFTMAX = [1e-4, 2.5e-4, 1e-3, 4e-3, 1.6e-2, 6.4e-2, 0.1]
SCALES_GELU = [float(v) for v in np.geomspace(2.0 ** -8, 2.0 ** -2, 400)]  # every 8-bit code at each


def _seeded(seed):
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------ softmax


@pytest.mark.parametrize("scale", SCALES_SOFTMAX)
def test_shiftmax_error_bound(scale):
    seed = int(scale * 1e6)
    g = _seeded(seed)
    x0 = shiftmax_x0(scale)
    span = int(20 / scale)  # real scores in [-20, 20]: differences past 15/log2(e) are cut to 0 anyway
    worst = 0.0
    for length in (1, 2, 3, 17, 64):
        x = torch.randint(-span, span + 1, (1500, length), generator=g)
        # corners: all equal, one dominant, all at the extremes, a narrow spread
        x[0] = 0
        x[1] = -span
        x[1, 0] = span
        x[2] = span
        x[3] = torch.randint(-3, 4, (length,), generator=g)
        y = shiftmax(x, x0)
        assert int(y.min()) >= 0 and int(y.max()) <= 1 << OUT_BITS, f"seed {seed}"
        err = (y.double() / 2 ** OUT_BITS - torch.softmax(x.double() * scale, dim=-1)).abs().max().item()
        worst = max(worst, err)
    bound = SOFTMAX_BOUND if scale <= 2 ** -6 else SOFTMAX_BOUND_COARSE
    print(f"shiftmax scale {scale}: max error {worst:.4f}")
    assert worst <= bound, f"seed {seed}: shiftmax error {worst:.4f} > {bound} at scale {scale}"


def test_shiftmax_matches_python_integers():
    g = _seeded(7)
    for scale in (1e-3, 0.05):
        x0 = shiftmax_x0(scale)
        x = torch.randint(-30000, 30000, (50, 17), generator=g)
        got = shiftmax(x, x0)
        for i in range(x.shape[0]):
            assert got[i].tolist() == shiftmax_python(x[i].tolist(), x0), f"seed 7 row {i}"


def test_shiftmax_numpy_and_bad_x0():
    x = np.array([[0, -100, 100]], dtype=np.int64)
    assert isinstance(shiftmax(x, -50), np.ndarray)
    with pytest.raises(ValueError, match="x0"):
        shiftmax(x, 0)
    with pytest.raises(ValueError, match="scale"):
        shiftmax_x0(0.0)


# ------------------------------------------------------------------ GELU


def test_int_gelu_error_bound_all_8bit_inputs():
    q = torch.arange(-128, 128)
    worst = 0.0
    for scale in SCALES_GELU:
        cut, c = gelu_constants(scale)
        y = int_gelu(q, cut, c).double() * gelu_scale(scale, c)
        err = (y - F.gelu(q.double() * scale)).abs().max().item()
        assert err <= GELU_BOUND, f"i-GELU error {err:.4f} > {GELU_BOUND} at scale {scale}"
        worst = max(worst, err)
    print(f"i-GELU: max error {worst:.4f} over scales 2**-8 .. 2**-2")


def test_int_gelu_plain_math():
    # the integer polynomial, written out with Python integers and math.erf's shape: sign, saturation
    scale = 0.04
    cut, c = gelu_constants(scale)
    assert cut == round(1.769 / (scale / math.sqrt(2))) and c == round(1 / (0.2888 * (scale / math.sqrt(2)) ** 2))
    for v in range(-200, 201):
        m = min(abs(v), cut)
        e = (1 if v > 0 else -1 if v < 0 else 0) * (c - (cut - m) ** 2)
        assert int(int_gelu(torch.tensor([v]), cut, c)[0]) == v * (e + c)
    # GELU(x) -> x for large x, -> 0 for very negative x: exactly, once |q| >= cut
    big = torch.tensor([cut, cut + 5, -cut, -cut - 5])
    assert int_gelu(big, cut, c).tolist() == [cut * 2 * c, (cut + 5) * 2 * c, 0, 0]


# ------------------------------------------------------------------ layer norm


def test_isqrt_exact():
    g = _seeded(3)
    v = torch.cat([torch.randint(0, 1 << 62, (4000,), generator=g),
                   torch.tensor([0, 1, 2, 3, 4, (1 << 62) - 1, (1 << 62), (1 << 63) - 1]),
                   torch.tensor([k * k + d for k in (1, 7, 3037000499) for d in (-1, 0, 1)])])
    got = isqrt(v)
    for a, b in zip(v.tolist(), got.tolist()):
        assert math.isqrt(a) == b, f"seed 3: isqrt({a}) = {b}"
    with pytest.raises(ValueError, match="negative"):
        isqrt(torch.tensor([-1]))


@pytest.mark.parametrize("dim", [1, 2, 4, 17, 32, 64, 256])
def test_layernorm_error_bound(dim):
    g = _seeded(dim)
    rows = [torch.randint(-128, 128, (3000, dim), generator=g),  # the int8 range
            torch.randint(-2, 3, (3000, dim), generator=g),  # small spreads
            torch.randint(-511, 512, (500, dim), generator=g),  # the widest accepted inputs
            torch.full((2, dim), 127), torch.full((2, dim), -128)]  # constant rows
    worst = 0.0
    for x in rows:
        n = normalize(x).double() / 2 ** FRAC_BITS
        xd = x.double()
        sd = xd.std(dim=-1, unbiased=False, keepdim=True)
        ref = torch.where(sd > 0, (xd - xd.mean(dim=-1, keepdim=True)) / sd.clamp(min=1e-30), torch.zeros_like(xd))
        worst = max(worst, (n - ref).abs().max().item())
    print(f"layernorm D={dim}: max error {worst:.5f}")
    assert worst <= LAYERNORM_BOUND, f"seed {dim}: layernorm error {worst:.5f} > {LAYERNORM_BOUND}"


def test_layernorm_affine_and_requant():
    x = torch.tensor([[1, 2, 3, 4], [5, 5, 5, 5]])
    gamma, beta = torch.tensor([2, 2, 2, 2]), torch.tensor([256, 0, 0, -256])
    y = int_layernorm(x, gamma, beta, 1, 8, -128, 127)  # (n * 2 + beta) / 256, rounded
    std = math.sqrt(1.25)
    want = [[round((v - 2.5) / std * 2 + b) for v, b in zip(range(1, 5), (1, 0, 0, -1))], [1, 0, 0, -1]]
    assert y.tolist() == want
    with pytest.raises(ValueError, match="2\\*\\*9"):
        normalize(torch.tensor([[600, 0]]))

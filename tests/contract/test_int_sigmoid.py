"""The integer sigmoid against plain math (PLAN in Fractions) and against the float sigmoid, with its
error bound measured over every 16-bit input at every fraction width."""

from fractions import Fraction
from math import floor

import numpy as np
import pytest
import torch

from cdsl.contract.ref.int_sigmoid import ERROR_BOUND, MAX_FRAC_BITS, ONE, int_sigmoid


def plan(x: Fraction) -> Fraction:
    """PLAN on x >= 0 (HeatViT's piecewise linear sigmoid)."""
    if x >= 5:
        return Fraction(1)
    if x >= Fraction(19, 8):
        return x / 32 + Fraction(27, 32)
    if x >= 1:
        return x / 8 + Fraction(5, 8)
    return x / 4 + Fraction(1, 2)


def plain(z: int, frac_bits: int) -> int:
    """256 * PLAN(|x|) rounded half up; 256 minus that for x < 0."""
    pos = floor(256 * plan(Fraction(abs(z), 2 ** frac_bits)) + Fraction(1, 2))
    return pos if z >= 0 else 256 - pos


@pytest.mark.parametrize("frac_bits", [0, 1, 3, 4, 6, 8, 12, 16])
def test_equals_plain_math(frac_bits):
    rng = np.random.default_rng(frac_bits)
    z = np.concatenate([np.arange(-300, 301), rng.integers(-2 ** 15, 2 ** 15, 600), [-2 ** 15, 2 ** 15 - 1],
                        # every segment boundary and its neighbours
                        [s * (k << frac_bits) // 8 + e for k in (8, 19, 40) for s in (1, -1) for e in (-1, 0, 1)]])
    got = int_sigmoid(torch.from_numpy(z.astype(np.int64)), frac_bits).tolist()
    assert got == [plain(int(v), frac_bits) for v in z], f"frac_bits={frac_bits}"


def test_error_bound_over_the_whole_input_range():
    """Every 16-bit input at every fraction width 0..16: |y/256 - sigmoid(x)| <= ERROR_BOUND, and the
    bound is tight (measured 0.02048)."""
    z = torch.arange(-2 ** 15, 2 ** 15)
    worst = 0.0
    for frac_bits in range(MAX_FRAC_BITS + 1):
        y = int_sigmoid(z, frac_bits)
        assert int(y.min()) >= 0 and int(y.max()) <= ONE
        err = (y.double() / ONE - torch.sigmoid(z.double() / 2 ** frac_bits)).abs().max().item()
        assert err <= ERROR_BOUND, f"frac_bits={frac_bits}: {err}"
        worst = max(worst, err)
    assert worst > ERROR_BOUND - 0.001


def test_symmetry_and_saturation():
    z = torch.arange(-2 ** 12, 2 ** 12)
    for frac_bits in (0, 4, 9):
        y = int_sigmoid(z, frac_bits)
        assert torch.equal(y + int_sigmoid(-z, frac_bits), torch.full_like(y, ONE))
        assert int(int_sigmoid(torch.tensor([0]), frac_bits)) == ONE // 2
    assert int(int_sigmoid(torch.tensor([5 << 4]), 4)) == ONE and int(int_sigmoid(torch.tensor([-(5 << 4)]), 4)) == 0


def test_numpy_in_numpy_out_and_bad_frac_bits():
    assert isinstance(int_sigmoid(np.array([1, 2]), 2), np.ndarray)
    with pytest.raises(ValueError, match="frac_bits"):
        int_sigmoid(torch.tensor([1]), MAX_FRAC_BITS + 1)
    with pytest.raises(TypeError):
        int_sigmoid(torch.tensor([0.5]), 2)

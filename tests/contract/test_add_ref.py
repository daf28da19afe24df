"""The add reference against plain math: Fractions of the multipliers it states, and the real sum."""

from fractions import Fraction
from math import floor

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from cdsl.contract.ref.add import ADD_MULT_BITS, add, add_multipliers

SCALES = st.floats(min_value=1e-4, max_value=1e3, allow_nan=False, allow_infinity=False)


def plain(a: int, b: int, ma: int, mb: int, shift: int, qmin: int, qmax: int) -> int:
    """clamp(floor((a*Ma + b*Mb) / 2**S + 1/2)), in Fractions."""
    return min(max(floor(Fraction(a * ma + b * mb, 2 ** shift) + Fraction(1, 2)), qmin), qmax)


@settings(max_examples=300, derandomize=True)
@given(sa=SCALES, sb=SCALES, sy=SCALES)
def test_multipliers_are_the_closest_at_the_largest_shift(sa, sb, sy):
    try:
        ma, mb, shift = add_multipliers(sa, sb, sy)
    except ValueError:
        # refused only when even a shift of 0 cannot hold the larger ratio in the multiplier bits
        assert round(max(Fraction(sa), Fraction(sb)) / Fraction(sy)) >= 2 ** ADD_MULT_BITS
        return
    assert 0 <= ma < 2 ** ADD_MULT_BITS and 0 <= mb < 2 ** ADD_MULT_BITS and 0 <= shift <= 62
    for m, s in ((ma, sa), (mb, sb)):
        ratio = Fraction(s) / Fraction(sy)
        assert abs(Fraction(m, 2 ** shift) - ratio) <= Fraction(1, 2 ** (shift + 1))  # rounded to nearest
    if shift < 62:  # one more bit of shift would overflow a multiplier
        assert max(round(Fraction(sa) / Fraction(sy) * 2 ** (shift + 1)),
                   round(Fraction(sb) / Fraction(sy) * 2 ** (shift + 1))) >= 2 ** ADD_MULT_BITS


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_add_equals_plain_math(seed):
    rng = np.random.default_rng(seed)
    sa, sb, sy = rng.uniform(0.01, 1, size=3)
    ma, mb, shift = add_multipliers(sa, sb, sy)
    a = rng.integers(-128, 128, size=200)
    b = rng.integers(0, 256, size=200)
    extremes = [(-128, 0), (127, 255), (0, 0), (-128, 255), (127, 0)]
    a = np.concatenate([a, [e[0] for e in extremes]])
    b = np.concatenate([b, [e[1] for e in extremes]])
    got = add(torch.tensor(a), torch.tensor(b), mult_a=ma, mult_b=mb, shift=shift, qmin=-128, qmax=127)
    want = [plain(int(x), int(y), ma, mb, shift, -128, 127) for x, y in zip(a, b)]
    assert got.tolist() == want, f"seed={seed}"
    assert {-128, 127} & set(want)  # the extremes saturate


def test_add_is_the_real_sum_within_half_a_step():
    """The rescaled integer sum is the real sum a*sa + b*sb on the output grid, up to the multipliers'
    rounding: within half a step plus the rescaling error, unclamped."""
    sa, sb, sy = 0.0625, 0.1, 0.13
    ma, mb, shift = add_multipliers(sa, sb, sy)
    for a in range(-128, 128, 7):
        for b in range(-128, 128, 5):
            y = int(add(np.array([a]), np.array([b]), mult_a=ma, mult_b=mb, shift=shift, qmin=-10**6, qmax=10**6)[0])
            real = (a * sa + b * sb) / sy
            err = (abs(a) + abs(b)) / 2 ** (shift + 1)
            assert abs(y - real) <= 0.5 + err + 1e-12, (a, b)


def test_add_refusals():
    with pytest.raises(ValueError, match="too large"):
        add_multipliers(1e6, 1.0, 1e-3)
    with pytest.raises(ValueError, match="positive"):
        add_multipliers(0.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="one shape"):
        add(np.zeros(3, dtype=np.int64), np.zeros(4, dtype=np.int64), mult_a=1, mult_b=1, shift=0, qmin=0, qmax=1)
    with pytest.raises(TypeError):
        add(np.zeros(3), np.zeros(3), mult_a=1, mult_b=1, shift=0, qmin=0, qmax=1)

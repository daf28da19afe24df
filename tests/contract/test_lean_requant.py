"""lean_requant (the lean form of one requantization) against plain math over every accumulator.

For each case the lean form `LeanRequant.apply` must equal, for every acc in [lo, hi],

    clamp(floor(acc * M / 2**S + 1/2), qmin, qmax)      (S >= 1; acc * M for S == 0)

computed here with Python ints and fractions (not with `requantize`). Cases: the digits MLP's three
layers, random scales and ranges, S == 0, M with trailing zeros, M == 0, scales above 1 (several steps
per accumulator), ranges that stay inside one level or two, and a staircase with more levels than the
search covers.
"""

import math
from fractions import Fraction

import numpy as np
import pytest

from cdsl.contract.ref.requant import LEAN_SEARCH_LEVELS, csd_digits, lean_cost, lean_requant, quantize_multiplier


def plain(acc: int, m: int, s: int, qmin: int, qmax: int) -> int:
    value = acc * m if s == 0 else math.floor(Fraction(acc * m, 2**s) + Fraction(1, 2))
    return min(max(value, qmin), qmax)


def plain_all(lo, hi, m, s, qmin, qmax) -> np.ndarray:
    """Every acc in [lo, hi], vectorized on Python ints: floor((acc*M + 2**(S-1)) / 2**S) is the same
    number as floor(acc*M/2**S + 1/2) (checked against `plain` on a sample below)."""
    acc = np.arange(lo, hi + 1).astype(object)
    value = acc * m if s == 0 else (acc * m + 2**(s - 1)) // 2**s
    return np.clip(value, qmin, qmax).astype(np.int64)


MLP = [  # (M, S, qmin, qmax, lo, hi) of examples/mlp.cdsl's three layers
    (1019927816, 36, 0, 255, -2089561, 2073631),
    (711231797, 35, 0, 255, -130698, 114477),
    (673529415, 39, -128, 127, -1045521, 1037250),
]


def cases():
    rng = np.random.default_rng(1401)
    out = list(MLP)
    for _ in range(12):
        m, s = quantize_multiplier(float(rng.uniform(1e-4, 0.2)))
        width = int(rng.integers(8, 20))
        lo, hi = sorted(int(v) for v in rng.integers(-(1 << width), 1 << width, size=2))
        qmin, qmax = ((0, 255), (-128, 127), (-8, 7), (0, 15))[int(rng.integers(0, 4))]
        out.append((m, s, qmin, qmax, lo, hi))
    out += [
        (3, 0, -128, 127, -100, 100),  # S == 0: acc * 3, saturating
        (96 << 20, 30, -128, 127, -40000, 40000),  # M with trailing zeros
        (0, 17, -128, 127, -5000, 5000),  # M == 0: a constant 0
        (5, 1, -128, 127, -200, 200),  # scale 2.5 > 1: several steps per accumulator
        (1 << 29, 30, 0, 255, 10, 11),  # inside one level (10*0.5 -> 5, 11*0.5 -> 6): two levels
        (1 << 20, 30, 0, 255, -3, 300),  # tiny scale: one threshold in range
        (1 << 29, 30, 0, 255, -50, -1),  # all below qmin: constant
        (1 << 20, 24, -32768, 32767, -(1 << 20), 1 << 20),  # 16-bit out: more levels than the search covers
    ]
    return out


@pytest.mark.parametrize("case", cases(), ids=lambda c: f"M{c[0]}-S{c[1]}-[{c[4]},{c[5]}]")
def test_lean_equals_plain_over_the_whole_range(case):
    m, s, qmin, qmax, lo, hi = case
    lean = lean_requant(m, s, qmin, qmax, lo, hi)
    want = plain_all(lo, hi, m, s, qmin, qmax)
    got = lean.apply(np.arange(lo, hi + 1, dtype=np.int64))
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{case}: {lean}; first differing acc {lo + int(bad[0])}: {got[bad[0]]} != {want[bad[0]]}"
    rng = np.random.default_rng(abs(hash(case)) % 2**32)
    for acc in [lo, hi, *rng.integers(lo, hi + 1, size=20).tolist()]:  # the vectorized statement is `plain`
        assert want[acc - lo] == plain(acc, m, s, qmin, qmax)
        assert lean.apply(int(acc)) == plain(acc, m, s, qmin, qmax)


def test_lean_is_cheaper_on_the_mlp():
    """The point of the lean form: on the digits MLP the constant multiply shrinks (fewer signed digits
    and fewer adder bits than the original M over the whole accumulator width)."""
    for m, s, qmin, qmax, lo, hi in MLP:
        lean = lean_requant(m, s, qmin, qmax, lo, hi)
        assert len(csd_digits(lean.mult)) < len(csd_digits(m))
        assert lean.window_bits < max(abs(lo), abs(hi)).bit_length()
        assert lean_cost(lean) < sum(max(hi.bit_length() + 32 - k, 0) for k, _ in csd_digits(m))


def test_csd_digits_sum_to_the_value():
    rng = np.random.default_rng(5)
    for x in [0, 1, 2, 3, 7, 0b1011011, 2**31 - 1, *rng.integers(0, 2**31, size=50).tolist()]:
        digits = csd_digits(int(x))
        assert sum(d << k for k, d in digits) == x
        assert all(d in (1, -1) for _, d in digits)
        assert all(b[0] - a[0] >= 2 for a, b in zip(digits, digits[1:]))  # non-adjacent


def test_lean_search_levels_bound_is_exercised():
    m, s, qmin, qmax, lo, hi = (1 << 20, 24, -32768, 32767, -(1 << 20), 1 << 20)
    levels = plain(hi, m, s, qmin, qmax) - plain(lo, m, s, qmin, qmax)
    assert levels > LEAN_SEARCH_LEVELS


def test_lean_requant_rejects_bad_input():
    with pytest.raises(ValueError, match="multiplier"):
        lean_requant(-1, 3, 0, 255, 0, 10)
    with pytest.raises(ValueError, match="qmin"):
        lean_requant(1, 3, 10, 0, 0, 10)
    with pytest.raises(TypeError, match="multiplier"):
        lean_requant(1.5, 3, 0, 255, 0, 10)


def test_lean_table_shares_one_shift_and_equals_plain():
    from cdsl.contract.ref.requant import lean_requant_table

    lo, hi = -30000, 30000
    table = [(1019927816, 35), (96 << 20, 30), (3, 0), (0, 9), (5, 1), (1 << 10, 40), (711231797, 34)]
    forms = lean_requant_table([m for m, _ in table], [s for _, s in table], -128, 127, lo, hi)
    assert len({f.shift for f in forms if f.mult}) == 1
    acc = np.arange(lo, hi + 1, dtype=np.int64)
    for (m, s), form in zip(table, forms):
        want = plain_all(lo, hi, m, s, -128, 127)
        assert (form.apply(acc) == want).all(), f"M={m} S={s}: {form}"

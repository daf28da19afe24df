"""requantize and quantize_multiplier against plain math on Python ints and fractions.Fraction.

The independent statements:
- requantize(acc, M, S, qmin, qmax) = clamp(floor(acc * M / 2**S + 1/2), qmin, qmax) for S >= 1
  (round half up), clamp(acc * M, qmin, qmax) for S == 0.
- quantize_multiplier(real) = (M, S), M < 2**mult_bits, S in 0..62, such that M / 2**S is the
  nearest to `real` of all those fractions (found by trying every S), within half an LSB.
Hypothesis prints the falsifying example (and a reproduce blob) on failure; it is derandomized,
so a failure repeats on every run.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cdsl.contract.ref.requant import MULT_BITS, quantize_multiplier, requantize

SETTINGS = settings(max_examples=400, deadline=None, derandomize=True, print_blob=True)
DEFAULT_BITS = 30  # quantize_multiplier's default mult_bits: M < 2**30
EXTREME_ACCS = [0, 1, -1, 2**40, -2**40, 2**40 - 1, -2**40 + 1, 2**31, -2**31]
EXTREME_MS = [0, 1, 2**31 - 1]
EXTREME_SHIFTS = [0, 1, 2, 31, 62]
BOUNDS = [(-128, 127), (0, 255), (-2**62, 2**62)]
I64 = 2**63


# --- the plain-math statements ----------------------------------------------------------------

def exact_requant(acc: int, m: int, s: int, qmin: int, qmax: int) -> int:
    """floor(acc * m / 2**s + 1/2), or acc * m when s == 0, clamped to [qmin, qmax]."""
    value = acc * m if s == 0 else math.floor(Fraction(acc * m, 2**s) + Fraction(1, 2))
    return min(max(value, qmin), qmax)



def nearest_error(real: float, mult_bits: int) -> Fraction:
    """The least |M / 2**S - real| over every S in 0..62 and integer M in [0, 2**mult_bits)."""
    target = Fraction(real)
    errors = []
    for s in range(63):
        m = min(math.floor(target * 2**s + Fraction(1, 2)), 2**mult_bits - 1)
        errors.append(abs(Fraction(m, 2**s) - target))
    return min(errors)


def assert_nearest(real: float, m: int, s: int, mult_bits: int = DEFAULT_BITS) -> None:
    """M, S in range; M / 2**S within half an LSB of real and as near as any (M', S') can be."""
    assert 0 <= m < 2**mult_bits and 0 <= s <= 62, f"real={real!r}: (M, S)=({m}, {s}) out of range"
    error = abs(Fraction(m, 2**s) - Fraction(real))
    assert error <= Fraction(1, 2**(s + 1)), f"real={real!r}: (M, S)=({m}, {s}) misses by {error}"
    assert error == nearest_error(real, mult_bits), f"real={real!r}: (M, S)=({m}, {s}) is not the nearest"
    if real >= 2.0 ** (mult_bits - 1 - 62):  # not tiny: S could go high enough for full precision
        assert m >= 2**(mult_bits - 1), f"real={real!r}: M={m} lost precision"


def as_array(values, kind: str):
    return np.array(values, dtype=np.int64) if kind == "numpy" else torch.tensor(values, dtype=torch.int64)


def scales(mult_bits: int):
    """Floats 0 <= real < 2**mult_bits - 1/2 (all that fit), mantissas and exponents spread evenly,
    subnormals too."""
    limit = 2.0**mult_bits - 0.5
    spread = st.builds(math.ldexp, st.floats(0.5, 1, exclude_max=True), st.integers(-1074, mult_bits))
    return (st.floats(0, limit, exclude_max=True) | spread).filter(lambda r: r < limit)


# --- requantize --------------------------------------------------------------------------------

@SETTINGS
@given(acc=st.integers(-2**70, 2**70) | st.sampled_from(EXTREME_ACCS),
       m=st.integers(0, 2**31 - 1) | st.sampled_from(EXTREME_MS),
       s=st.integers(0, 62) | st.sampled_from(EXTREME_SHIFTS),
       bounds=st.sampled_from(BOUNDS) | st.lists(st.integers(-2**40, 2**40), min_size=2, max_size=2).map(sorted))
@example(acc=-2**40, m=2**31 - 1, s=62, bounds=(-2**62, 2**62))
@example(acc=2**40, m=2**31 - 1, s=40, bounds=(-2**62, 2**62))
def test_requantize_python_ints_match_fraction(acc, m, s, bounds):
    qmin, qmax = bounds
    got = requantize(acc, m, s, qmin, qmax)
    assert type(got) is int
    assert got == exact_requant(acc, m, s, qmin, qmax)


@pytest.mark.parametrize("bounds", BOUNDS)
def test_requantize_extremes_python_ints(bounds):
    for acc in EXTREME_ACCS:
        for m in EXTREME_MS:
            for s in EXTREME_SHIFTS:
                want = exact_requant(acc, m, s, *bounds)
                assert requantize(acc, m, s, *bounds) == want, f"acc={acc} M={m} S={s} bounds={bounds}"


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("bounds", BOUNDS)
def test_requantize_extremes_arrays(kind, bounds):
    """Every extreme (acc, M, S) gives the exact value, beyond int64 too (computed with Python ints)."""
    for acc in EXTREME_ACCS:
        for m in EXTREME_MS:
            for s in EXTREME_SHIFTS:
                accs = as_array([acc, -acc], kind)
                if abs(acc) >= 2**63:  # not an int64 array at all
                    continue
                got = requantize(accs, m, s, *bounds).tolist()
                want = [exact_requant(a, m, s, *bounds) for a in (acc, -acc)]
                assert got == want, f"acc={acc} M={m} S={s} bounds={bounds} kind={kind}"


def test_requantize_beyond_int64_is_exact():
    # Regression: numpy [2**40] * (2**31-1) >> 40 wrapped to -1 (int64 overflow) instead of 2**31-1;
    # then it was refused; now it is computed exactly with Python integers, for numpy and torch alike.
    assert requantize(2**40, 2**31 - 1, 40, -2**62, 2**62) == 2**31 - 1
    for acc in (np.array([2**40, -2**40]), torch.tensor([2**40, -2**40])):
        out = requantize(acc, 2**31 - 1, 40, -2**62, 2**62)
        assert type(out) is type(acc) and out.tolist() == [2**31 - 1, -(2**31 - 1)]
    # The largest product that fits (|acc| * M < 2**63, S = 0) is still exact.
    acc = np.array([2**32, -2**32])
    assert requantize(acc, 2**31 - 1, 0, -I64, I64 - 1).tolist() == [2**63 - 2**32, -(2**63 - 2**32)]


@pytest.mark.parametrize("kind", ["int", "numpy", "torch"])
def test_requantize_exact_ties_round_up(kind):
    """acc * M = t * 2**(S-1) with t odd: exactly halfway, and the result is acc * M / 2**S + 1/2."""
    for s in range(1, 63):
        for m in (1, 3, 2**31 - 1):
            for t in (-1, 1, -3, 3, -(2**20) - 1, 2**20 + 1):
                acc = t * 2**(s - 1)
                if kind != "int" and abs(acc) >= 2**63:
                    continue
                got = requantize(acc if kind == "int" else as_array([acc], kind), m, s, -I64, I64 - 1)
                got = got if kind == "int" else got.tolist()[0]
                assert Fraction(got) == Fraction(acc * m, 2**s) + Fraction(1, 2), f"acc={acc} M={m} S={s}"


@pytest.mark.parametrize("kind", ["int", "numpy", "torch"])
def test_requantize_saturates_both_ends(kind):
    def run(acc, m, s, qmin, qmax):
        got = requantize(acc if kind == "int" else as_array([acc], kind), m, s, qmin, qmax)
        return got if kind == "int" else got.tolist()[0]

    assert run(2**40, 1, 0, -128, 127) == 127
    assert run(-2**40, 1, 0, -128, 127) == -128
    assert run(-2**40, 1, 0, 0, 255) == 0
    # S = 1: 255.5 rounds to 256 -> 255; -128.5 rounds to -128 (stays); -129.5 -> -129 -> -128
    assert run(511, 1, 1, 0, 255) == 255
    assert run(-257, 1, 1, -128, 127) == -128
    assert run(-259, 1, 1, -128, 127) == -128
    assert run(253, 1, 1, -128, 127) == 127  # 126.5 -> 127: on the bound, not past it
    assert run(251, 1, 1, -128, 127) == 126


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_requantize_per_channel_broadcast(kind, seed):
    """Per-channel M, S ([C] against [N, C]; [C, 1, 1] against [N, C, H, W]), element by element."""
    rng = np.random.default_rng(seed)
    ms = [0, 1, 2**31 - 1, *rng.integers(0, 2**31, size=3).tolist()]
    ss = [0, 62, 1, *rng.integers(0, 63, size=3).tolist()]
    channels = len(ms)
    acc = rng.integers(-2**31, 2**31 + 1, size=(4, channels, 3, 2))
    acc[0, :, 0, 0] = 2**31
    acc[0, :, 0, 1] = -2**31
    for qmin, qmax in BOUNDS:
        flat = requantize(as_array(acc[:, :, 0, 0], kind), as_array(ms, kind), as_array(ss, kind), qmin, qmax)
        full = requantize(as_array(acc, kind), as_array(ms, kind).reshape(-1, 1, 1),
                          as_array(ss, kind).reshape(-1, 1, 1), qmin, qmax)
        assert type(full) is type(as_array([0], kind)) and full.dtype in (np.int64, torch.int64)
        for (n, c, h, w), a in np.ndenumerate(acc):
            want = exact_requant(int(a), ms[c], ss[c], qmin, qmax)
            assert int(full[n, c, h, w]) == want, f"seed={seed} at {(n, c, h, w)}: acc={a} M={ms[c]} S={ss[c]}"
            if h == w == 0:
                assert int(flat[n, c]) == want, f"seed={seed} at {(n, c)} ([N, C] against [C])"


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_requantize_wide_acc_small_multiplier(kind):
    """|acc| up to 2**40 with M < 2**22 still fits int64, and is exact."""
    rng = np.random.default_rng(5)
    accs = [2**40, -2**40, *rng.integers(-2**40, 2**40, size=50).tolist()]
    for m, s in [(2**22 - 1, 62), (2**22 - 1, 40), (12345, 17), (2**21, 0)]:
        got = requantize(as_array(accs, kind), m, s, -I64, I64 - 1).tolist()
        assert got == [exact_requant(a, m, s, -I64, I64 - 1) for a in accs], f"M={m} S={s}"


def test_requantize_refuses_out_of_contract_operands():
    with pytest.raises(ValueError, match="multiplier"):
        requantize(5, -1, 1, 0, 255)
    with pytest.raises(ValueError, match="multiplier"):
        requantize(np.array([5]), np.array([1, 2**31]), 1, 0, 255)
    with pytest.raises(ValueError, match="shift"):
        requantize(5, 1, 63, 0, 255)
    with pytest.raises(ValueError, match="shift"):
        requantize(torch.tensor([5]), 1, torch.tensor([-1]), 0, 255)
    with pytest.raises(TypeError, match="integers"):
        requantize(torch.tensor([0.5]), 1, 1, 0, 255)
    with pytest.raises(TypeError, match="integers"):
        requantize(np.array([0.5]), 1, 1, 0, 255)


# --- quantize_multiplier -----------------------------------------------------------------------

def test_default_multiplier_width():
    assert MULT_BITS - 1 == DEFAULT_BITS  # the default below; M < 2**30 leaves Requant's 31 bits a spare


@SETTINGS
@given(real=scales(DEFAULT_BITS))
@example(real=1.0 - 2.0**-40)  # carries into the next power of two
@example(real=2.0**-33)  # the smallest scale with full precision at S = 62
@example(real=1.5 * 2.0**-63)  # tiny: M = 1, S = 62
@example(real=5e-324)  # the least subnormal: M = 0, S = 62
@example(real=float(2**30 - 1))
def test_quantize_multiplier_is_nearest(real):
    assert_nearest(real, *quantize_multiplier(real))


@SETTINGS
@given(data=st.data(), mult_bits=st.integers(1, 31))
def test_quantize_multiplier_is_nearest_any_width(data, mult_bits):
    real = data.draw(scales(mult_bits), label="real")
    assert_nearest(real, *quantize_multiplier(real, mult_bits=mult_bits), mult_bits=mult_bits)


@pytest.mark.parametrize("k", range(-32, 30))
def test_quantize_multiplier_carry(k):
    """real = (1 - 2**-40) * 2**k: the 30-bit mantissa rounds up to 2**30, so M is halved to 2**29
    and S drops by one; M / 2**S is then exactly 2**k (no 30-bit M at S + 1 is nearer)."""
    real = (1 - 2.0**-40) * 2.0**k
    m, s = quantize_multiplier(real)
    assert (m, s) == (2**29, 29 - k), f"real={real!r}"
    assert Fraction(m, 2**s) == Fraction(2)**k > Fraction(real)
    assert_nearest(real, m, s)
    below = math.nextafter((1 - 2.0**-31) * 2.0**k, 0)  # just under the tie: no carry
    assert quantize_multiplier(below) == (2**30 - 1, 30 - k), f"real={below!r}"


@pytest.mark.parametrize("real,m", [
    (1.5 * 2.0**-63, 1),  # regression: was (0, 62); the tiny branch truncated M instead of rounding
    (5 * 2.0**-65, 1),  # 0.625 LSB -> 1
    ((2**20 + 0.75) * 2.0**-62, 2**20 + 1),  # regression: was 2**20 (truncated)
    (2.0**-34, 2**28),  # exact: a power of two keeps its value with fewer bits
    (math.nextafter(2.0**-33, 0), 2**29),  # just under full precision: rounds up to 2**29
    (2.0**-64, 0),  # 0.25 LSB -> 0
    (2.0**-63, 0),  # exactly half an LSB: ties to even -> 0
    (3 * 2.0**-63, 2),  # 1.5 LSB: ties to even -> 2
    (5e-324, 0),
])
def test_quantize_multiplier_tiny_scale(real, m):
    """real < 2**-33: S stops at 62 and M = real * 2**62 rounded to the nearest (ties to even),
    fewer than 30 bits; the error is then at most half of 2**-62."""
    got_m, got_s = quantize_multiplier(real)
    assert (got_m, got_s) == (m, 62), f"real={real!r}"
    assert abs(Fraction(got_m, 2**62) - Fraction(real)) <= Fraction(1, 2**63)
    assert_nearest(real, got_m, got_s)


@pytest.mark.parametrize("real", [2.0**30 - 0.5, 2.0**30, 2.0**31 - 1, 1e300, 1.7976931348623157e308])
def test_quantize_multiplier_too_large(real):
    """real >= 2**30 - 1/2 rounds to 2**30 or more at S = 0 (at the tie, 2**30 is the even one)."""
    with pytest.raises(ValueError, match="too large to represent"):
        quantize_multiplier(real)


def test_quantize_multiplier_largest_accepted():
    assert quantize_multiplier(float(2**30 - 1)) == (2**30 - 1, 0)
    largest = math.nextafter(2.0**30 - 0.5, 0)
    assert quantize_multiplier(largest) == (2**30 - 1, 0)
    assert_nearest(largest, 2**30 - 1, 0)


@pytest.mark.parametrize("real", [0.0, -0.0, 0])
def test_quantize_multiplier_zero(real):
    assert quantize_multiplier(real) == (0, 0)


@pytest.mark.parametrize("real", [-1.0, -5e-324, -math.inf, math.inf, math.nan])
def test_quantize_multiplier_refuses_negative_and_non_finite(real):
    with pytest.raises(ValueError, match="finite and non-negative"):
        quantize_multiplier(real)

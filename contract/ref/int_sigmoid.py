"""Integer sigmoid: PLAN (piecewise linear approximation of a nonlinearity), as HeatViT uses it in
8-bit hardware, written in integers.

Input: a signed integer `z` holding the real value x = z / 2**F (F = `frac_bits`, 0..MAX_FRAC_BITS).
Output: an integer y in 0..ONE (ONE = 256) holding sigmoid(x) ~ y / 256.

With a = |z| (so |x| = a / 2**F), PLAN on |x|, each segment rounded half up onto 1/256 steps:

    |x| >= 5                :  y+ = 256
    2.375 <= |x| < 5        :  y+ = 216 + rnd(  8 * a / 2**F)     (|x| / 32 + 27/32)
    1 <= |x| < 2.375        :  y+ = 160 + rnd( 32 * a / 2**F)     (|x| /  8 +  5/8)
    |x| < 1                 :  y+ = 128 + rnd( 64 * a / 2**F)     (|x| /  4 +  1/2)

    rnd(k * a / 2**F) = (k * a + (2**F >> 1)) >> F                (half up; exact when F = 0)

and y = y+ for z >= 0, y = 256 - y+ for z < 0, so y(-z) = 256 - y(z) exactly and y(0) = 128.
The segment tests are exact integer comparisons: a >= 5 * 2**F, 8 * a >= 19 * 2**F, a >= 2**F.
y is non-decreasing in z except at PLAN's one discontinuity, |x| = 2.375, where it steps down by one
1/256 unit (236 just below, 235 at it; visible for F >= 6).

Error bound (tests/contract/test_int_sigmoid.py measures it over every 16-bit input at every F):
|y / 256 - sigmoid(z / 2**F)| <= ERROR_BOUND = 0.0205. Measured: 0.01894 for F <= 5 (PLAN's own
error), 0.02048 at most (F = 7..15, where the rounding onto 1/256 steps adds to it).
"""

from __future__ import annotations

import torch

from cdsl.contract.ref._tensor import as_int64, like_input

ONE = 256  # y = ONE is sigmoid = 1.0
OUT_BITS = 9  # 0..256 needs 9 bits, unsigned
MAX_FRAC_BITS = 16
ERROR_BOUND = 0.0205

# (threshold on 8 * |x|, slope * 256 (the multiplier of a), intercept * 256), from the top segment down
SEGMENTS = ((19, 8, 216), (8, 32, 160), (0, 64, 128))  # 8|x| >= 19: 2.375; 8|x| >= 8: 1; else


def sigmoid_positive(a: int, frac_bits: int) -> int:
    """y+ for one non-negative integer a (= |z|): the table above, in Python integers."""
    if a >= 5 << frac_bits:
        return ONE
    for eighths, slope, intercept in SEGMENTS:
        if 8 * a >= eighths << frac_bits:
            return intercept + ((slope * a + ((1 << frac_bits) >> 1)) >> frac_bits)
    raise AssertionError("unreachable")


def int_sigmoid(z, frac_bits: int):
    """Elementwise integer sigmoid of `z` (torch or numpy integers, real value z / 2**frac_bits) ->
    int64 in 0..256 (see the module docstring)."""
    if not isinstance(frac_bits, int) or isinstance(frac_bits, bool) or not 0 <= frac_bits <= MAX_FRAC_BITS:
        raise ValueError(f"int_sigmoid: frac_bits must be an integer in 0..{MAX_FRAC_BITS}, got {frac_bits!r}")
    zt = as_int64(z, what="int_sigmoid input")
    a = zt.abs()
    half = (1 << frac_bits) >> 1
    pos = torch.full_like(a, ONE)
    done = a >= (5 << frac_bits)
    for eighths, slope, intercept in SEGMENTS:
        here = ~done & (8 * a >= (eighths << frac_bits))
        pos = torch.where(here, intercept + ((slope * a + half) >> frac_bits), pos)
        done = done | here
    return like_input(torch.where(zt >= 0, pos, ONE - pos), z)

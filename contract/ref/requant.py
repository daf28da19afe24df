"""Requantization: the one definition every block uses.

    y = clamp((acc * M + (1 << (S - 1))) >> S, qmin, qmax)        (S >= 1)
    y = clamp(acc * M, qmin, qmax)                                 (S == 0)

`>>` is an arithmetic shift (floor division by 2**S), so the rounding is
round-half-up. M is a non-negative integer multiplier (< 2**31), S in 0..62.
Works elementwise on Python ints, numpy int64 arrays and torch int64 tensors;
M and S may be scalars or per-channel arrays broadcastable against `acc`.
"""

from __future__ import annotations

import math

MULT_BITS = 31  # M < 2**MULT_BITS


def requantize(acc, multiplier, shift, qmin: int, qmax: int):
    """The integer contract. See the module docstring."""
    prod = acc * multiplier
    rounding = _rounding(shift)
    out = (prod + rounding) >> shift
    return _clamp(out, qmin, qmax)


def _rounding(shift):
    # 1 << (S-1) for S >= 1, else 0; elementwise for arrays.
    if isinstance(shift, int):
        return (1 << (shift - 1)) if shift > 0 else 0
    return ((shift > 0) * (1 << (shift - 1).clip(min=0))) if hasattr(shift, "clip") else _rounding(int(shift))


def _clamp(x, lo: int, hi: int):
    if isinstance(x, int):
        return min(max(x, lo), hi)
    return x.clip(lo, hi)


def quantize_multiplier(real: float, *, mult_bits: int = MULT_BITS - 1) -> tuple[int, int]:
    """(M, S) with M / 2**S ~= real, M < 2**mult_bits, as exact as the bits allow.

    real must be >= 0. real == 0 gives (0, 0).
    """
    if real < 0:
        raise ValueError(f"requantization scale must be non-negative, got {real!r}")
    if real == 0:
        return 0, 0
    mant, exp = math.frexp(real)  # real = mant * 2**exp, 0.5 <= mant < 1
    shift = mult_bits - exp
    m = round(mant * (1 << mult_bits))
    if m == (1 << mult_bits):  # rounding carried into the next power of two
        m >>= 1
        shift -= 1
    while shift > 62:  # tiny scale: give up mantissa bits
        m >>= 1
        shift -= 1
    if shift < 0:
        raise ValueError(f"requantization scale {real!r} is too large to represent")
    return int(m), int(shift)

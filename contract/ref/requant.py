"""Requantization: the one definition every block uses.

    y = clamp((acc * M + (1 << (S - 1))) >> S, qmin, qmax)        (S >= 1)
    y = clamp(acc * M, qmin, qmax)                                 (S == 0)

`>>` is an arithmetic shift (floor division by 2**S), so the rounding is
round-half-up. M is a non-negative integer multiplier (< 2**31), S in 0..62.
Works elementwise on Python ints, numpy int64 arrays and torch int64 tensors;
M and S may be scalars or per-channel arrays broadcastable against `acc`.
Exact at any size: with arrays, where |acc| * M + 2**(S-1) would not fit int64 the
elementwise computation falls back to Python integers (slower; the result is int64).
"""

from __future__ import annotations

import math

import numpy as np
import torch

MULT_BITS = 31  # M < 2**MULT_BITS
MAX_SHIFT = 62  # S <= MAX_SHIFT


def requantize(acc, multiplier, shift, qmin: int, qmax: int):
    """The integer contract. See the module docstring."""
    acc, (a_lo, a_hi) = _int64(acc, "acc")
    multiplier, (m_lo, m_hi) = _int64(multiplier, "multiplier")
    shift, (s_lo, s_hi) = _int64(shift, "shift")
    if m_lo < 0 or m_hi >= 1 << MULT_BITS:
        raise ValueError(f"multiplier must lie in [0, 2**{MULT_BITS}), got [{m_lo}, {m_hi}]")
    if s_lo < 0 or s_hi > MAX_SHIFT:
        raise ValueError(f"shift must lie in [0, {MAX_SHIFT}], got [{s_lo}, {s_hi}]")
    worst = max(-a_lo, a_hi) * m_hi + _rounding(s_hi)
    if worst >= 1 << 63 and not all(isinstance(v, int) for v in (acc, multiplier, shift)):
        return _requantize_wide(acc, multiplier, shift, qmin, qmax)
    prod = acc * multiplier
    rounding = _rounding(shift)
    out = (prod + rounding) >> shift
    return _clamp(out, qmin, qmax)


def _requantize_wide(acc, multiplier, shift, qmin: int, qmax: int):
    """The same contract where |acc| * M exceeds int64 (16-bit weights and activations, long dot
    products): computed elementwise with Python integers (exact at any size), the clamped result
    returned as int64 of the caller's kind (torch or numpy)."""
    def objects(v):
        if isinstance(v, int):
            return v
        arr = v.numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
        return arr.astype(object)

    a, m, s = objects(acc), objects(multiplier), objects(shift)
    out = np.vectorize(lambda x, mm, ss: min(max((x * mm + ((1 << (ss - 1)) if ss > 0 else 0)) >> ss, qmin), qmax),
                       otypes=[object])(a, m, s).astype(np.int64)
    return torch.from_numpy(out) if isinstance(acc, torch.Tensor) else out


def _int64(x, what: str):
    # x as int64 (Python ints as they are), and its (min, max) as Python ints ((0, 0) when empty).
    if isinstance(x, int):
        return x, (x, x)
    if isinstance(x, torch.Tensor):
        if x.is_floating_point() or x.is_complex():
            raise TypeError(f"{what} must hold integers, got torch dtype {x.dtype!r}")
        x, empty = x.to(torch.int64), x.numel() == 0
    else:
        arr = np.asarray(x)
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{what} must hold integers, got dtype {arr.dtype!r}")
        x, empty = (arr.astype(np.int64) if arr.ndim else np.int64(arr)), arr.size == 0
    return x, ((0, 0) if empty else (int(x.min()), int(x.max())))


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
    """(M, S) with M / 2**S the nearest to `real` of the fractions M < 2**mult_bits, S in 0..62.

    One rounding, to the nearest (ties to even, Python's round): |M / 2**S - real| <= 2**-(S+1).
    M has mult_bits bits of precision (2**(mult_bits-1) <= M) unless the scale is tiny
    (real < 2**(mult_bits-1-62)): then S = 62 and M = round(real * 2**62) has fewer bits,
    possibly 0. real == 0 gives (0, 0). ValueError if real is negative, not finite, or so
    large that it rounds to 2**mult_bits or more with S = 0 (real >= 2**mult_bits - 1/2).
    """
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"requantization scale must be finite and non-negative, got {real!r}")
    if real == 0:
        return 0, 0
    _, exp = math.frexp(real)  # real = mant * 2**exp, 0.5 <= mant < 1
    shift = min(mult_bits - exp, MAX_SHIFT)  # tiny scale: S stops at 62, M gives up mantissa bits
    m = round(math.ldexp(real, shift))  # real * 2**shift is exact in float: one rounding
    if m == (1 << mult_bits):  # rounding carried into the next power of two
        m >>= 1
        shift -= 1
    if shift < 0:
        raise ValueError(f"requantization scale {real!r} is too large to represent")
    return int(m), int(shift)

"""Integer softmax: I-ViT's Shiftmax (shift-only exponent, one integer division per row).

Input: integer scores `x` (any width; int64 arithmetic) with real value `scale * x`, along the last
dimension. With x0 = floor(-1 / scale) (the integer standing for -1.0, a constant fixed at export):

    x  = x - max(x)                                  (<= 0)
    x  = x + (x >> 1) - (x >> 4)                     (x * log2(e), log2(e) ~ 1.4375)
    x  = max(x, N * x0)                              (N = 15: exponents below 2**-15 are cut)
    q  = floor(x / x0);  r = x - q * x0              (x = q * x0 + r, q >= 0, x0 < r <= 0)
    e  = floor((r - 2 * x0) * 2**(N - q) / 2)        (2**(x*scale) ~ (1 + r*scale/2) * 2**-q, times 2**N)
    s  = sum(e)
    f  = floor(2**62 / s)
    y  = floor(e * f / 2**(62 - OUT_BITS))            (OUT_BITS = 7: y in 0..128, real value y / 128)

I-ViT clamps the sum to 31 bits and divides 2**31 - 1 by it; with fine input scales (large |x0|) and
long rows that clamp saturates, so here the sum stays exact and the reciprocal has 62 bits
(e <= s, so e * f <= 2**62 never overflows int64). That is our change to Shiftmax.

Everything is integer: shifts, one multiply by a constant per element, one division per row.
The output scale is 2**-OUT_BITS. `shiftmax_x0(scale)` gives x0; the measured error against
float softmax is in tests/contract/test_int_kernels.py and README ("Integer ViT kernels").
"""

from __future__ import annotations

import math

import torch

from cdsl.contract.ref._tensor import as_int64, like_input

N = 15  # exponent cut: e ~ 2**(N - q)
OUT_BITS = 7  # output scale 2**-OUT_BITS, values 0 .. 2**OUT_BITS
RECIP_BITS = 62  # f = floor(2**RECIP_BITS / sum)


def shiftmax_x0(scale: float) -> int:
    """x0 = floor(-1 / scale): the integer that stands for -1.0 on the input grid (< 0)."""
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"shiftmax: scale must be a positive finite number, got {scale!r}")
    x0 = math.floor(-1.0 / scale)
    if x0 >= 0 or x0 < -(1 << 30):
        raise ValueError(f"shiftmax: scale {scale!r} gives x0 = {x0}, outside [-2**30, -1]")
    return x0


def shiftmax(x, x0: int):
    """Softmax of integer scores along the last dim -> int64 in 0..2**OUT_BITS (see the module docstring)."""
    if not (isinstance(x0, int) and -(1 << 30) <= x0 <= -1):
        raise ValueError(f"shiftmax: x0 must be an integer in [-2**30, -1], got {x0!r}")
    xt = as_int64(x, what="shiftmax input")
    d = xt - xt.max(dim=-1, keepdim=True).values
    d = d + (d >> 1) - (d >> 4)
    d = torch.clamp(d, min=N * x0)
    q = torch.div(d, x0, rounding_mode="floor")
    r = d - q * x0
    e = ((r - 2 * x0) << (N - q)) >> 1
    s = e.sum(dim=-1, keepdim=True)
    f = torch.div(torch.full_like(s, 1 << RECIP_BITS), s, rounding_mode="floor")
    return like_input((e * f) >> (RECIP_BITS - OUT_BITS), x)

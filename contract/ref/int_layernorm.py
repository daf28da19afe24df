"""Integer layer norm (I-BERT / I-ViT's I-LayerNorm) with an exact integer square root.

For integer codes x [..., D] (any grid: layer norm does not depend on the input scale):

    s   = sum(x)
    c   = D * x - s                          (D times the deviation from the mean: no rounded mean)
    v   = floor(sum(c**2) / D)               (D**2 * variance)
    std = max(isqrt(v * 2**(2K)), 1)         (D * standard deviation * 2**K, floored; 1 for a constant row)
    f   = floor(2**R / std)                  (R = 31 + K)
    n   = (c * f + 2**(R-F-K-1)) >> (R-F-K)  (the normalized value (x - mean) / std, F fraction bits)

K = 10 extra bits of the square root keep the error small for rows of small spread too (without
them a row like [0, 0, 0, 1] is off by 70%). Inputs lie in (-2**9, 2**9) (`INPUT_BOUND`: any code of
at most 9 bits, signed or not; not every 10-bit code, since -2**9 is out) and D <= 1024, so nothing
overflows int64.

then the affine part in integers, gamma as codes g (real gamma = s_g * g) and beta as an integer
at scale s_g * 2**-F, and the one requantization onto the output grid:

    z = n * g + beta;  y = requantize(z, M, S, qmin, qmax)

`isqrt` is the exact floor square root, computed digit by digit (two bits of the radicand per step,
32 steps for a 64-bit radicand: compare, subtract, shift; the hardware form). I-ViT runs 10 Newton
steps from 2**16 instead, which is not exact for large radicands; I-BERT's code uses a float sqrt.
Float layer norm's epsilon is left out (std >= 1 instead). The measured error of n against float
(x - mean) / sqrt(var) is in README ("Integer ViT kernels").
"""

from __future__ import annotations

import torch

from cdsl.contract.ref._tensor import as_int64, like_input
from cdsl.contract.ref.requant import requantize

SQRT_BITS = 10  # K: extra fraction bits of the square root
RECIP_BITS = 31 + SQRT_BITS  # R: f = floor(2**R / std)
FRAC_BITS = 8  # F: fraction bits of the normalized value n
INPUT_BOUND = 1 << 9  # inputs lie in (-INPUT_BOUND, INPUT_BOUND)
INPUT_BITS = 9  # the widest code (signed or unsigned) that always lies there
MAX_DIM = 1024


def isqrt(v):
    """floor(sqrt(v)) of non-negative int64 values, exactly (digit by digit)."""
    x = as_int64(v, what="isqrt input").clone()
    if x.numel() and int(x.min()) < 0:
        raise ValueError(f"isqrt: negative input {int(x.min())}")
    res = torch.zeros_like(x)
    bit = 1 << 62
    while bit:
        trial = res + bit
        take = x >= trial
        x = torch.where(take, x - trial, x)
        res = torch.where(take, (res >> 1) + bit, res >> 1)
        bit >>= 2
    return like_input(res, v)


def normalize(x, frac_bits: int = FRAC_BITS):
    """n = round((x - mean) / std * 2**frac_bits) over the last dim, in integers (module docstring)."""
    if not (isinstance(frac_bits, int) and 0 <= frac_bits <= 16):
        raise ValueError(f"layernorm: frac_bits must be an integer in 0..16, got {frac_bits!r}")
    xt = as_int64(x, what="layernorm input")
    d = xt.shape[-1]
    if not 1 <= d <= MAX_DIM:
        raise ValueError(f"layernorm: the last dimension must be 1..{MAX_DIM}, got {d}")
    if xt.numel() and int(xt.abs().max()) >= INPUT_BOUND:
        raise ValueError("layernorm: inputs must lie in (-2**9, 2**9)")
    c = d * xt - xt.sum(dim=-1, keepdim=True)
    v = torch.div((c * c).sum(dim=-1, keepdim=True), d, rounding_mode="floor")
    std = torch.clamp(isqrt(v << (2 * SQRT_BITS)), min=1)
    f = torch.div(torch.full_like(std, 1 << RECIP_BITS), std, rounding_mode="floor")
    shift = RECIP_BITS - frac_bits - SQRT_BITS
    return like_input((c * f + (1 << (shift - 1))) >> shift, x)


def int_layernorm(x, gamma, beta, multiplier, shift, qmin: int, qmax: int, frac_bits: int = FRAC_BITS):
    """requantize(normalize(x) * gamma + beta, M, S) over the last dim; gamma, beta [D] integers."""
    n = as_int64(normalize(x, frac_bits), what="layernorm")
    g = as_int64(gamma, what="layernorm gamma")
    b = as_int64(beta, what="layernorm beta")
    return like_input(requantize(n * g + b, multiplier, shift, qmin, qmax), x)

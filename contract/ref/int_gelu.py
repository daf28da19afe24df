"""Integer GELU: I-BERT's i-GELU (a second-order polynomial for erf), in magnitude form.

GELU(x) = x/2 * (1 + erf(x / sqrt 2)), and I-BERT approximates erf(u) by
L(u) = sign(u) * (a * (min(|u|, -b) + b)**2 + 1) with a = -0.2888, b = -1.769.

For an integer input q with real value S * q, S' = S / sqrt 2, the constants fixed at export
(`gelu_constants(S)`, all positive integers) are

    cut = round(-b / S')            (where erf saturates, in input units)
    c   = round(1 / (-a * S'**2))   (erf's 1.0 in units of s_e = -a * S'**2)
    one = c                         (the "1 +" of GELU, in the same units)

and the kernel is, with |q| clipped at cut,

    e = sign(q) * (c - (cut - min(|q|, cut))**2)      (erf(S' q) ~ e * s_e)
    y = q * (e + one)                                 (GELU(S q) ~ y * S * s_e / 2)

I-BERT floors its constants (and shifts e right by 14 bits, which suits 32-bit inputs); here they
are rounded to nearest and no shift is taken, since inputs are the 8-bit codes of a linear layer's
requantized output. The output is the integer y with scale `gelu_scale(S, c)`; a requantization
follows. The measured error is in README ("Integer ViT kernels").
"""

from __future__ import annotations

import math

import torch

from cdsl.contract.ref._tensor import as_int64, like_input

A = -0.2888
B = -1.769


def gelu_constants(scale: float) -> tuple[int, int]:
    """(cut, c) for an input grid of `scale` (see the module docstring)."""
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"gelu: scale must be a positive finite number, got {scale!r}")
    s1 = scale / math.sqrt(2.0)
    cut = max(1, round(-B / s1))
    c = max(1, round(1.0 / (-A * s1 * s1)))
    return cut, c


def gelu_scale(scale: float, c: int) -> float:
    """The real value of one unit of the kernel's output y, for input `scale` and constant c.

    s_e = 1 / c (so that e = c stands for erf = 1 exactly; c rounds 1 / (-a S'^2)), output S * s_e / 2."""
    return scale / (2.0 * c)


def int_gelu(x, cut: int, c: int):
    """i-GELU of integer codes -> int64 y (see the module docstring)."""
    for name, v in (("cut", cut), ("c", c)):
        if not (isinstance(v, int) and v >= 1):
            raise ValueError(f"gelu: {name} must be a positive integer, got {v!r}")
    q = as_int64(x, what="gelu input")
    m = torch.clamp(q.abs(), max=cut)
    e = torch.sign(q) * (c - (cut - m) ** 2)
    return like_input(q * (e + c), x)

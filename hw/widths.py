"""Bit growth: the value range of every accumulator, from the ranges of what it sums (no silent wrap)."""

from __future__ import annotations

from cdsl.dsl.ir import int_range


def signed_width(lo: int, hi: int) -> int:
    """Bits of the smallest signed integer type holding every value in [lo, hi]."""
    width = 1
    while not (-(1 << (width - 1)) <= lo and hi <= (1 << (width - 1)) - 1):
        width += 1
    return width


def dot_range(x_range: tuple[int, int], w_bits: int, k: int, bias_range: tuple[int, int] = (0, 0)) -> tuple[int, int]:
    """Range of sum_k x * w + bias for x in `x_range`, w any `w_bits`-bit signed weight, `k` terms."""
    xlo, xhi = x_range
    wlo, whi = int_range(w_bits, True)
    corners = [xlo * wlo, xlo * whi, xhi * wlo, xhi * whi]
    return k * min(corners) + min(0, bias_range[0]), k * max(corners) + max(0, bias_range[1])


def sum_range(x_range: tuple[int, int], n: int) -> tuple[int, int]:
    """Range of a sum of `n` values in `x_range` (a pooling window)."""
    xlo, xhi = x_range
    return min(xlo, n * xlo), max(xhi, n * xhi)

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

import functools
import math
from dataclasses import dataclass

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


# ---------------------------------------------------------------- the lean form of one requantization


@dataclass(frozen=True)
class LeanRequant:
    """`requantize(acc, M, S, qmin, qmax)` restated for the accumulators a block can reach, [lo, hi]:

        y = lo_out                                                      if acc <  lo_edge
        y = hi_out                                                      if acc >= hi_edge
        y = lo_out + 1 + (((acc - lo_edge) * mult + offset) >> shift)   otherwise

    with mult, offset >= 0. Inside the window [lo_edge, hi_edge) the multiplier sees
    d = acc - lo_edge in [0, 2**window_bits), not the whole accumulator, and (mult, offset, shift)
    is the cheapest triple found that puts every step of the staircase where requantize puts it
    (`lean_requant`), so the hardware multiplies a narrow d by a short constant and never clamps.
    lo_out == hi_out: the output is that constant on [lo, hi].
    """

    lo_edge: int
    hi_edge: int
    lo_out: int
    hi_out: int
    mult: int
    offset: int
    shift: int
    window_bits: int

    def apply(self, acc):
        """The lean form on a Python int or an int64 numpy array (exact; see the class docstring)."""
        if isinstance(acc, int):
            if acc < self.lo_edge:
                return self.lo_out
            if acc >= self.hi_edge:
                return self.hi_out
            return self.lo_out + 1 + (((acc - self.lo_edge) * self.mult + self.offset) >> self.shift)
        a = np.asarray(acc).astype(object)
        inner = self.lo_out + 1 + (((a - self.lo_edge) * self.mult + self.offset) >> self.shift)
        return np.where(a < self.lo_edge, self.lo_out, np.where(a >= self.hi_edge, self.hi_out, inner)).astype(np.int64)


LEAN_SEARCH_LEVELS = 1024  # staircases with more steps keep (M, S) as they are (no search)


def _threshold(y: int, multiplier: int, shift: int) -> int:
    # the least acc with (acc * M + r) >> S >= y (M > 0)
    return -((-((y << shift) - (_rounding(shift)))) // multiplier)


def _naf_digits(x: int) -> list[tuple[int, int]]:
    """x >= 0 as a sum of d * 2**k, d = +-1, with the fewest terms (the non-adjacent form), k ascending."""
    out, k = [], 0
    while x:
        if x & 1:
            d = 2 - (x & 3)
            out.append((k, d))
            x -= d
        x >>= 1
        k += 1
    return out


def csd_digits(x: int) -> list[tuple[int, int]]:
    """The signed digits (k, +-1) of x >= 0, fewest first (non-adjacent form), k ascending."""
    if x < 0:
        raise ValueError(f"csd_digits needs x >= 0, got {x!r}")
    return _naf_digits(x)


def _fewest_digits(a: int, b: int) -> int:
    """The x in [a, b] (0 <= a <= b) with the fewest signed digits (ties: the smallest)."""
    memo: dict[tuple[int, int], tuple[int, int]] = {}

    def best(lo: int, hi: int) -> tuple[int, int]:  # (digits, x) or (inf, -1) when empty
        if lo > hi:
            return (1 << 30, -1)
        if lo <= 0 <= hi:
            return (0, 0)
        if hi - lo <= 64:
            return min((len(_naf_digits(x)), x) for x in range(max(lo, 0), hi + 1))
        key = (lo, hi)
        if key not in memo:
            w, v = best(-(-lo // 2), hi // 2)
            cands = [(w, 2 * v)]
            for d in (1, -1):  # x = 2v + d
                w, v = best(-(-(lo - d) // 2), (hi - d) // 2)
                if v >= 0:
                    cands.append((w + 1, 2 * v + d))
            memo[key] = min(cands)
        return memo[key]

    return best(a, b)[1]


def _fit(t: list[int], shift: int) -> tuple[int, int] | None:
    """The (mult, offset) interval search of `lean_requant` for one shift: the staircase u(d) =
    (d * mult + offset) >> shift must step to k exactly at d = t[k] (t[0] = 0, k = 1..n-1, and stay
    below n-1 up to t[n-1] - 1). Returns (mult, offset) with the fewest signed digits in mult, or None."""
    n = len(t)
    ks = list(range(n))
    lows = [(k << shift, t[k]) for k in ks[:n - 1]]  # offset >= k*2**s - t_k * m
    highs = [((k << shift) - 1, t[k] - 1) for k in ks[1:]]  # offset <= k*2**s - 1 - (t_k - 1) * m

    def span(m: int) -> int:  # convex in m; feasible iff <= 0
        return max(a - tk * m for a, tk in lows) - min(b - tk * m for b, tk in highs)

    a, b = 0, (1 << MULT_BITS) - 1
    while b - a > 2:
        m1, m2 = a + (b - a) // 3, b - (b - a) // 3
        if span(m1) <= span(m2):
            b = m2
        else:
            a = m1
    m0 = min(range(a, b + 1), key=span)
    if span(m0) > 0:
        return None
    lo, hi = 0, m0  # the least feasible m
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if span(mid) <= 0 else (mid + 1, hi)
    first = lo
    lo, hi = m0, (1 << MULT_BITS) - 1  # the greatest
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if span(mid) <= 0 else (lo, mid - 1)
    m = _fewest_digits(first, lo)
    return m, max(a - tk * m for a, tk in lows)


def _check_lean(lean: LeanRequant, multiplier: int, shift: int, qmin: int, qmax: int, lo: int, hi: int) -> None:
    """AssertionError unless `lean` equals requantize on [lo, hi]: both are non-decreasing in acc, so
    equality at lo, hi and on both sides of every threshold inside is equality everywhere (with more
    than 4 * LEAN_SEARCH_LEVELS levels: at the window's edges, the inside being exact by algebra)."""
    y_lo = requantize(lo, multiplier, shift, qmin, qmax)
    y_hi = requantize(hi, multiplier, shift, qmin, qmax)
    points = {lo, hi}
    if 0 < y_hi - y_lo <= 4 * LEAN_SEARCH_LEVELS:
        for y in range(y_lo + 1, y_hi + 1):
            th = _threshold(y, multiplier, shift)
            points |= {th, th - 1}
    elif y_hi > y_lo:
        points |= {lean.lo_edge, lean.lo_edge - 1, lean.hi_edge, lean.hi_edge - 1}
    for acc in sorted(points):
        if lo <= acc <= hi and lean.apply(acc) != requantize(acc, multiplier, shift, qmin, qmax):
            raise AssertionError(f"lean requantization differs from requantize at acc={acc}: {lean!r}")


def lean_cost(lean: LeanRequant) -> int:
    """Adder bits of the lean form's constant multiply (the figure `lean_requant` minimizes)."""
    width = lean.window_bits + lean.shift + 1
    return sum(max(width - k, 0) for k, _ in _naf_digits(lean.mult))


def lean_requant(multiplier: int, shift: int, qmin: int, qmax: int, lo: int, hi: int) -> LeanRequant:
    """See `_lean_requant` (this checks the arguments and caches the search per argument tuple)."""
    for name, v in (("multiplier", multiplier), ("shift", shift), ("qmin", qmin), ("qmax", qmax), ("lo", lo), ("hi", hi)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"{name} must be an int, got {v!r}")
    return _lean_requant(*(int(v) for v in (multiplier, shift, qmin, qmax, lo, hi)))


@functools.lru_cache(maxsize=256)
def _lean_requant(multiplier: int, shift: int, qmin: int, qmax: int, lo: int, hi: int) -> LeanRequant:
    """The `LeanRequant` equal to requantize(acc, multiplier, shift, qmin, qmax) for every acc in [lo, hi].

    The staircase of requantize on [lo, hi] has n = f(hi) - f(lo) steps, at the thresholds
    T(y) = ceil((y * 2**S - r) / M). The window is [T(f(lo)+1), T(f(hi))). For n <= LEAN_SEARCH_LEVELS,
    every shift s in 0..S is tried: the multipliers m for which some offset puts every step at its
    threshold form an interval (the constraints are linear in (m, offset)); its member with the fewest
    signed digits is taken, and of all shifts the one with the fewest adder bits (`lean_cost`). s = S,
    m = M is always feasible, so the search never fails; with more levels that is what is used.
    Proof of equality (checked here on every call, not assumed): both forms are non-decreasing in acc,
    so agreeing at lo, hi and on both sides of every threshold inside (lo, hi] is agreeing everywhere.
    """
    if not 0 <= multiplier < 1 << MULT_BITS or not 0 <= shift <= MAX_SHIFT:
        raise ValueError(f"multiplier {multiplier!r} / shift {shift!r} out of range")
    if qmin > qmax or lo > hi:
        raise ValueError(f"need qmin <= qmax and lo <= hi, got [{qmin}, {qmax}] and [{lo}, {hi}]")

    def f(acc):
        return requantize(acc, multiplier, shift, qmin, qmax)

    y_lo, y_hi = f(lo), f(hi)
    n = y_hi - y_lo
    if n == 0:
        lean = LeanRequant(hi + 1, hi + 1, y_lo, y_lo, 0, 0, 0, 0)
    elif n == 1:
        edge = _threshold(y_hi, multiplier, shift)
        lean = LeanRequant(edge, edge, y_lo, y_hi, 0, 0, 0, 0)
    else:
        lo_edge, hi_edge = _threshold(y_lo + 1, multiplier, shift), _threshold(y_hi, multiplier, shift)
        window_bits = (hi_edge - lo_edge - 1).bit_length()
        # always exact: (acc*M + r) >> S = y_lo + 1 + (((acc - lo_edge)*M + offset) >> S)
        offset = lo_edge * multiplier + _rounding(shift) - ((y_lo + 1) << shift)
        lean = LeanRequant(lo_edge, hi_edge, y_lo, y_hi, multiplier, offset, shift, window_bits)
        if n <= LEAN_SEARCH_LEVELS:
            t = [_threshold(y_lo + 1 + k, multiplier, shift) - lo_edge for k in range(n)]
            for s in range(shift + 1):
                fit = _fit(t, s)
                if fit is not None:
                    cand = LeanRequant(lo_edge, hi_edge, y_lo, y_hi, fit[0], fit[1], s, window_bits)
                    if lean_cost(cand) < lean_cost(lean):
                        lean = cand
    _check_lean(lean, multiplier, shift, qmin, qmax, lo, hi)
    return lean


def lean_requant_table(multipliers, shifts, qmin: int, qmax: int, lo: int, hi: int) -> tuple[LeanRequant, ...]:
    """Per-channel `lean_requant` forms over the same accumulators [lo, hi], brought to one shift (the
    largest of theirs) so a table of multipliers can share one multiplier and one shift: a form with
    shift s moves to s + k as (mult << k, offset << k), the same value of ((d * mult + offset) >> s).
    Each form is checked against requantize as `lean_requant` checks it."""
    forms = [lean_requant(int(m), int(s), qmin, qmax, lo, hi) for m, s in zip(multipliers, shifts)]
    staircase = [f for f in forms if f.mult]
    shift = max((f.shift for f in staircase), default=0)
    out = []
    for (m, s), f in zip(zip(multipliers, shifts), forms):
        if f.mult:
            k = shift - f.shift
            f = LeanRequant(f.lo_edge, f.hi_edge, f.lo_out, f.hi_out, f.mult << k, f.offset << k, shift, f.window_bits)
            _check_lean(f, int(m), int(s), qmin, qmax, lo, hi)
        out.append(f)
    return tuple(out)

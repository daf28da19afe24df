"""MAC test vectors shared by the amaranth.sim and the Verilator tests: corner cases and step packing."""

from __future__ import annotations

import numpy as np

from cdsl.dsl import ir
from cdsl.hw.widths import dot_range, signed_width


def acc_width_for(k, a_bits, a_signed, w_bits):
    return signed_width(*dot_range(ir.int_range(a_bits, a_signed), w_bits, k))


def mac_cases(rng, rows, k, a_bits, a_signed, w_bits):
    alo, ahi = ir.int_range(a_bits, a_signed)
    wlo, whi = ir.int_range(w_bits, True)
    alt = np.arange(k) % 2 == 0
    yield "max*min", np.full(k, ahi), np.full((rows, k), wlo)
    yield "min*min", np.full(k, alo), np.full((rows, k), wlo)
    yield "max*max", np.full(k, ahi), np.full((rows, k), whi)
    yield "zeros", np.zeros(k, dtype=np.int64), rng.integers(wlo, whi + 1, size=(rows, k))
    yield "alternating", np.where(alt, ahi, alo), np.where(alt, whi, wlo)[None].repeat(rows, 0)
    holes = rng.choice([0, 1, 1 << max(0, w_bits - 2)], size=(rows, k)) if w_bits > 1 else np.zeros((rows, k), np.int64)
    holes[0] = 0  # one row without any plane
    yield "holes", rng.integers(alo, ahi + 1, size=k), holes
    yield "random", rng.integers(alo, ahi + 1, size=k), rng.integers(wlo, whi + 1, size=(rows, k))


def mac_steps(layout, x, w, lanes, *, masks=None):
    """MAC input transfers: per row, ceil(K/L) steps of `lanes` (x, w), zero-padded."""
    k = len(x)
    n_steps = -(-k // lanes)
    xp = np.zeros(n_steps * lanes, dtype=np.int64)
    xp[:k] = x
    words = []
    for r, row in enumerate(w):
        wp = np.zeros(n_steps * lanes, dtype=np.int64)
        wp[:k] = row
        for s in range(n_steps):
            fields = {"x": [int(v) for v in xp[s * lanes:(s + 1) * lanes]],
                      "w": [int(v) for v in wp[s * lanes:(s + 1) * lanes]],
                      "first": int(s == 0), "last": int(s == n_steps - 1)}
            if masks is not None:
                fields["mask"] = int(masks[r])
            words.append(layout.const(fields))
    return words

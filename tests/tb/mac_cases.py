"""MAC test vectors shared by the amaranth.sim and the Verilator tests: corner cases, step packing,
and the bit-serial MAC's expected values in plain Python-int math.

The expectations (`truncated_dot`, `bitserial_cycles`) never go through the reference
(`plane_masks`, `truncate`, `bitserial_dot`, `cycles`): the plane masks that feed the device
(`bitserial_steps`) come from `plane_masks`, so a bug there shows as a mismatch.
"""

from __future__ import annotations

import math

import numpy as np

from cdsl.contract.ref import bitserial_mac as bs_ref
from cdsl.dsl import ir
from cdsl.hw.bitserial_mac import LATENCY as BITSERIAL_LATENCY
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


def bitserial_steps(layout, x, w, lanes, w_bits):
    """BitSerialMac input transfers: `mac_steps` with each row's plane mask from the reference
    (looked up on the module at call time, so a test can swap `plane_masks` for a mutant)."""
    return mac_steps(layout, x, w, lanes, masks=bs_ref.plane_masks(w, w_bits))


def truncated_dot(x, w_row, w_bits: int, precision: int) -> int:
    """TruncQuant's truncated dot product written out: sum_k x_k * ((w_k >> s) << s), s = B - p."""
    s = w_bits - precision
    return sum(int(xk) * ((int(wk) >> s) << s) for xk, wk in zip(x, w_row))


def set_planes(w_row, w_bits: int, precision: int) -> int:
    """How many of the top `precision` planes hold a 1 in some weight of the row."""
    count = 0
    for b in range(w_bits - precision, w_bits):
        if any((int(wk) >> b) & 1 for wk in w_row):
            count += 1
    return count


def bitserial_cycles(w, w_bits: int, precision: int, lanes: int) -> int:
    """First step offered to last result out: per row ceil(K/L) * max(1, set planes), plus LATENCY."""
    steps = math.ceil(len(w[0]) / lanes)
    return sum(steps * max(1, set_planes(row, w_bits, precision)) for row in w) + BITSERIAL_LATENCY

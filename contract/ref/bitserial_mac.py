"""Integer reference of the bit-serial MAC (`cdsl.hw.bitserial_mac.BitSerialMac`).

Weights are two's-complement integers `w_bits` (B) wide. The hardware streams the weight
operand one bit-plane per cycle, most significant plane first; plane b contributes
`+2**b * sum(x * bit_b(w))`, except the MSB plane (b = B-1), which is subtracted.

Runtime precision p (1..B): only the top p planes (b >= B-p) are processed. Stopping after p
planes equals truncating the weights, `(w >> (B-p)) << (B-p)` (arithmetic shift, so rounding
toward minus infinity, as TruncQuant does), then an exact dot product.

Plane masks (MSQ bit sparsity): for each weight row (one output), bit b of its mask is set when
any weight of that row has bit b set in two's complement. Planes whose mask bit is clear
contribute nothing and are skipped (no cycles spent).

Timing (what `cycles` states, and what the RTL is held to): the dot product over K inputs is
processed in `steps = ceil(K / lanes)` steps of `lanes` inputs; each step costs one cycle per
active plane (active = mask bit set and within the top p planes) and at least one cycle
(a row without any active plane still takes one cycle per step to pass its zeros through).
The MAC's result is valid LATENCY cycles after its last step was accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cdsl.contract import codec
from cdsl.contract.intmodel import Setting
from cdsl.contract.ref.mac import MacCore

LATENCY = 1  # cycles from accepting a row's last step to its result being valid


def _check_bits(w_bits, precision=None):
    if not isinstance(w_bits, int) or isinstance(w_bits, bool) or not 1 <= w_bits <= 32:
        raise ValueError(f"w_bits must be an int in 1..32, got {w_bits!r}")
    if precision is not None:
        if not isinstance(precision, int) or isinstance(precision, bool) or not 1 <= precision <= w_bits:
            raise ValueError(f"precision must be an int in 1..{w_bits}, got {precision!r}")


def _as_weights(w, w_bits):
    arr = np.asarray(w)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"weights must be integers, got dtype {arr.dtype!r}")
    arr = arr.astype(np.int64)
    lo, hi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise ValueError(f"weights must lie in [{lo}, {hi}] for w_bits={w_bits!r}, got [{arr.min()}, {arr.max()}]")
    return arr


def truncate(w, w_bits: int, precision: int):
    """Keep the top `precision` of `w_bits` bits: (w >> (B-p)) << (B-p), elementwise, int64."""
    _check_bits(w_bits, precision)
    arr = _as_weights(w, w_bits)
    drop = w_bits - precision
    return (arr >> drop) << drop


def plane_bits(w, w_bits: int):
    """bit b of the two's-complement weight, as an int64 array [..., B] (index b = plane b)."""
    _check_bits(w_bits)
    arr = _as_weights(w, w_bits)
    unsigned = arr & ((1 << w_bits) - 1)
    return np.stack([(unsigned >> b) & 1 for b in range(w_bits)], axis=-1)


def plane_masks(w, w_bits: int):
    """Per-row masks of the non-zero planes: w [R, ...] -> int64 [R], bit b set iff some weight
    of that row has bit b set (two's complement)."""
    arr = _as_weights(w, w_bits)
    if arr.ndim < 1:
        raise ValueError("weights must have a row dimension")
    rows = arr.reshape(arr.shape[0], -1)
    bits = plane_bits(rows, w_bits)  # [R, K, B]
    present = bits.any(axis=1)  # [R, B]
    return (present.astype(np.int64) << np.arange(w_bits, dtype=np.int64)).sum(axis=1)


def active_planes(mask: int, w_bits: int, precision: int) -> tuple[int, ...]:
    """Planes the MAC processes for a row with this mask, in processing order (MSB first)."""
    _check_bits(w_bits, precision)
    return tuple(b for b in range(w_bits - 1, w_bits - precision - 1, -1) if (int(mask) >> b) & 1)


def bitserial_dot(x, w, *, w_bits: int, precision: int, lanes: int):
    """Dot products computed as the hardware does: plane by plane (MSB first, masked planes
    skipped), `lanes` inputs per step. x [K] or [N, K] (any integers), w [R, K] -> acc [R] or [N, R].

    Equals truncate(w, w_bits, precision) @ x exactly.
    """
    _check_bits(w_bits, precision)
    if not isinstance(lanes, int) or isinstance(lanes, bool) or lanes < 1:
        raise ValueError(f"lanes must be a positive int, got {lanes!r}")
    warr = _as_weights(w, w_bits)
    if warr.ndim != 2:
        raise ValueError(f"weights must be [rows, K], got shape {warr.shape!r}")
    xarr = np.asarray(x)
    if not np.issubdtype(xarr.dtype, np.integer):
        raise TypeError(f"inputs must be integers, got dtype {xarr.dtype!r}")
    xarr = xarr.astype(np.int64)
    single = xarr.ndim == 1
    xb = xarr[None, :] if single else xarr
    rows, k = warr.shape
    if xb.shape[-1] != k:
        raise ValueError(f"inputs have {xb.shape[-1]} features, weights expect {k}")
    bits = plane_bits(warr, w_bits)  # [R, K, B]
    masks = plane_masks(warr, w_bits)
    acc = np.zeros((xb.shape[0], rows), dtype=np.int64)
    for r in range(rows):
        for b in active_planes(int(masks[r]), w_bits, precision):
            sign = -1 if b == w_bits - 1 else 1
            for start in range(0, k, lanes):  # one step: `lanes` one-bit products
                part = xb[:, start:start + lanes] @ bits[r, start:start + lanes, b]
                acc[:, r] += sign * (part << b)
    return acc[0] if single else acc


def row_cycles(mask: int, *, k: int, w_bits: int, precision: int, lanes: int) -> int:
    """Cycles the MAC spends on one row: ceil(K/L) * max(1, active planes)."""
    steps = -(-k // lanes)
    return steps * max(1, len(active_planes(mask, w_bits, precision)))


def cycles(w, *, w_bits: int, precision: int, lanes: int) -> int:
    """Cycles from the first accepted step to the last row's result valid, with the MAC never
    starved or stalled: sum over rows of ceil(K/L) * max(1, active planes) + LATENCY."""
    warr = _as_weights(w, w_bits)
    rows = warr.reshape(warr.shape[0], -1)
    k = rows.shape[1]
    masks = plane_masks(rows, w_bits)
    return sum(row_cycles(int(m), k=k, w_bits=w_bits, precision=precision, lanes=lanes) for m in masks) + LATENCY


# ---------------------------------------------------------------- the MAC core of a bit-serial layer


@codec.serializable("bitserial")
@dataclass(frozen=True, eq=False)
class BitSerialCore(MacCore):
    """A weighted layer on the bit-serial MAC with `lanes` lanes. Runtime setting `precision`:
    the weight planes processed, 1..w_bits, or 0 for all of them (the default); below w_bits the
    products are those of `truncate(w, w_bits, precision)`."""

    lanes: int

    def settings(self, *, w_bits: int) -> tuple[Setting, ...]:
        return (Setting("precision", 0, w_bits, 0,
                        f"weight planes processed, MSB first (TruncQuant truncation); 0 = all {w_bits}"),)

    def matmul(self, x, weight, *, w_bits, settings):
        p = settings.get("precision", 0)
        if 0 < p < w_bits:
            weight = torch.from_numpy(truncate(weight.numpy(), w_bits, p))
        return x @ weight.T

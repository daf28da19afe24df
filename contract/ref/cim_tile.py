"""Integer reference of a compute-in-memory (CIM) crossbar layer (`cdsl.hw.cim_tile.CimTile`,
`cdsl.hw.cim_engine.CimEngine`), and its MAC core `CimCore`.

A weighted layer's products `acc[o] = sum_k x[k] * w[o, k]` are computed by R x C crossbar tiles
whose column sums pass through ADCs. Everything below is integer arithmetic; the training twin
(`cdsl.sw.cores.cim`) and the RTL reproduce it bit for bit.

Operand slices (two's complement). An operand `v` of `bits` bits is cut into n = ceil(bits / width)
slices of `width` bits, least significant first: slice i < n-1 is `(v >> width*i) & (2**width - 1)`
(unsigned); the top slice is `v >> width*(n-1)` (an arithmetic shift: signed when `v` is signed),
so `v = sum_i 2**(width*i) * slice_i` exactly.
- Weights (always signed, `w_bits`) are sliced with `cell` bits per cell: slice s of output o sits
  in its own column. Lower slices are non-negative conductance levels; the top slice is signed.
  Physically the cells hold offset-binary levels and a reference (dummy) column holding the
  top slice's midpoint 2**(c-1) is subtracted from the top slice's column current before its ADC,
  as NeuroSim's dummy column does: that difference is the signed top slice. Two's complement keeps
  a zero weight at zero current in every column and centres the top slice's partial sums on zero,
  so no ADC range is spent on an offset.
- Inputs (`in_bits`, signed or not) enter `dac` bits per step, one slice per step, top slice first:
  n_in = ceil(in_bits / dac) steps. A signed input's top slice is signed (a bipolar DAC level;
  with dac=1 it is the sign bit, weighted -2**(in_bits-1)).

Tiles. The fan-in K (a conv's im2col row, (c, ky, kx) order) is cut into consecutive chunks of
`tile_rows` inputs, one row tile each (`cdsl.dsl.analysis.cim_layout` chooses them). For row tile
t, input step b and weight slice s, column (o, s) sums its rows:

    psum[t, b, o, s] = sum_{k in chunk t} x_b[k] * w_s[o, k]

ADC. Each conversion quantizes one such partial sum with the column's step `steps[t, o, s]`, a
positive integer in units of 2**-step_frac partial-sum units (step = n / 2**f):

    code = clamp(floor((psum * 2**(f+1) + n) / (2n)), lo, hi)      (= round half up of psum / step)

with 2**adc levels: lo, hi = -2**(adc-1), 2**(adc-1) - 1 when the partial sum can be negative (a
signed weight or input slice), else 0, 2**adc - 1 (`adc_range`). Rounding is half up, saturation
at both ends. `scale=channel` gives every (row tile, column) its own step (ColumnQuant); with
`scale=tensor` all columns of a tile share one (the payload still stores one per column).

Shift-and-add. The tile's periphery recombines the codes of a column in units of 2**-f,
`v[t, o, s] = sum_b 2**(dac*b) * code * n`, the layer's digital back-end sums slices and row tiles,
`acc2[o] = sum_{t, s} 2**(cell*s) * v[t, o, s]`, and rounds once to the accumulator's units:

    acc[o] = (acc2[o] + 2**(f-1)) >> f        (f >= 1; acc2 itself when f = 0)

With steps of exactly one unit (n = 2**f) and enough ADC levels, acc equals x @ w.T exactly. The
layer then adds its bias and requantizes as every weighted layer does (`cdsl.contract.ref._weighted`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cdsl.contract import codec
from cdsl.contract.ref.mac import MacCore
from cdsl.dsl.ir import int_range


def _check(name: str, value, lo: int, hi: int | None = None) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < lo or (hi is not None and value > hi):
        raise ValueError(f"{name} must be an int in {lo}..{'' if hi is None else hi}, got {value!r}")
    return int(value)


def slice_count(bits: int, width: int) -> int:
    """Slices of `width` bits in a `bits`-bit operand: ceil(bits / width)."""
    return -(-bits // width)


def operand_slices(v: torch.Tensor, *, bits: int, width: int) -> list[torch.Tensor]:
    """Two's-complement slices of the int64 tensor `v` (values of a `bits`-bit integer), least
    significant first: the lower ones masked to `width` bits, the top one an arithmetic shift (so
    it is negative exactly where `v` is)."""
    n = slice_count(bits, width)
    mask = (1 << width) - 1
    return [(v >> (width * i)) & mask for i in range(n - 1)] + [v >> (width * (n - 1))]


def adc_range(adc: int, signed: bool) -> tuple[int, int]:
    """The codes of an `adc`-bit converter: signed when the partial sum can be negative."""
    return (-(1 << (adc - 1)), (1 << (adc - 1)) - 1) if signed else (0, (1 << adc) - 1)


def adc_convert(psum, step, *, frac: int, adc: int, signed: bool):
    """code = clamp(floor((psum * 2**(frac+1) + step) / (2*step)), lo, hi), elementwise (int64 tensors,
    `step` broadcastable against `psum`, every step >= 1)."""
    lo, hi = adc_range(adc, signed)
    return torch.div(psum * (1 << (frac + 1)) + step, 2 * step, rounding_mode="floor").clamp(lo, hi)


@codec.serializable("cim")
@dataclass(frozen=True, eq=False)
class CimCore(MacCore):
    """A weighted layer on R x C crossbar tiles with ADCs (see the module docstring).

    rows, cols: a tile's size; cell: bits per cell; dac: input bits per step; adc: ADC bits;
    in_bits, in_signed: the input codes' width and signedness; tile_rows: fan-in inputs per row tile
    (<= rows); steps: int64 [row tiles, outputs, slices], each column's ADC step in units of
    2**-step_frac partial-sum units.
    """

    rows: int
    cols: int
    cell: int
    dac: int
    adc: int
    in_bits: int
    in_signed: bool
    tile_rows: int
    steps: np.ndarray
    step_frac: int

    def __post_init__(self):
        _check("rows", self.rows, 1)
        _check("cols", self.cols, 1)
        _check("cell", self.cell, 1, 16)
        _check("dac", self.dac, 1, 16)
        _check("adc", self.adc, 1, 24)
        _check("in_bits", self.in_bits, 1, 32)
        _check("tile_rows", self.tile_rows, 1, self.rows)
        _check("step_frac", self.step_frac, 0, 16)
        steps = np.asarray(self.steps)
        if steps.ndim != 3 or not np.issubdtype(steps.dtype, np.integer) or (steps.size and steps.min() < 1):
            raise ValueError(f"steps must be positive integers [row tiles, outputs, slices], got {steps!r}")

    def slices(self, w_bits: int) -> int:
        return slice_count(w_bits, self.cell)

    def in_steps(self) -> int:
        return slice_count(self.in_bits, self.dac)

    def row_tiles(self, fan_in: int) -> int:
        return -(-fan_in // self.tile_rows)

    def check_shapes(self, *, out_channels: int, fan_in: int, w_bits: int) -> None:
        """The steps' shape against the layer: [ceil(fan_in / tile_rows), out_channels, slices]."""
        want = (self.row_tiles(fan_in), out_channels, self.slices(w_bits))
        if tuple(np.asarray(self.steps).shape) != want:
            raise ValueError(f"CIM steps must have shape {want!r} (row tiles, outputs, slices), got "
                             f"{tuple(np.asarray(self.steps).shape)!r}")
        if self.slices(w_bits) > self.cols:
            raise ValueError(f"{self.slices(w_bits)} slices of a {w_bits}-bit weight do not fit {self.cols} columns")

    def matmul(self, x, weight, *, w_bits, settings):
        out_channels, fan_in = weight.shape
        self.check_shapes(out_channels=out_channels, fan_in=fan_in, w_bits=w_bits)
        lo, hi = int_range(self.in_bits, self.in_signed)
        if x.numel() and (int(x.min()) < lo or int(x.max()) > hi):
            raise ValueError(f"CIM inputs must be {'signed' if self.in_signed else 'unsigned'} {self.in_bits}-bit "
                             f"codes in [{lo}, {hi}], got [{int(x.min())}, {int(x.max())}]")
        xs = operand_slices(x, bits=self.in_bits, width=self.dac)
        ws = operand_slices(weight, bits=w_bits, width=self.cell)
        steps = torch.from_numpy(np.asarray(self.steps, dtype=np.int64))
        f = self.step_frac
        acc2 = torch.zeros(*x.shape[:-1], out_channels, dtype=torch.int64)
        for t in range(self.row_tiles(fan_in)):
            chunk = slice(t * self.tile_rows, min((t + 1) * self.tile_rows, fan_in))
            for s, w_s in enumerate(ws):
                n = steps[t, :, s]
                for b, x_b in enumerate(xs):
                    signed = s == len(ws) - 1 or (self.in_signed and b == len(xs) - 1)
                    psum = x_b[..., chunk] @ w_s[:, chunk].T
                    code = adc_convert(psum, n, frac=f, adc=self.adc, signed=signed)
                    acc2 = acc2 + ((code * n) << (self.dac * b + self.cell * s))
        return (acc2 + (1 << (f - 1))) >> f if f else acc2

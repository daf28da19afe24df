"""CIM tile: the digital twin of one R x C crossbar with an ADC per column and its shift-and-add.

The array is programmed at generation time: `cells` [R, C] are the cell levels (weight slices; a
column with `col_signed` holds a top slice, whose levels may be negative: the offset-binary cells
minus the reference column, `cdsl.contract.ref.cim_tile`). Stream in `i`: one input step per
transfer, most significant first, payload `x` (one DAC level per row: `dac` bits, or, when
`x_signed`, the signed top slice on the `first` step and unsigned ones after it), `first`, `last`.
In the cycle a step is accepted every column sums its rows,

    psum[c] = sum_r x[r] * cells[r, c]

its ADC converts it with the column's step n[c] (units of 2**-step_frac),

    code[c] = clamp(floor((psum * 2**(f+1) + n) / (2n)), lo, hi)

with signed codes when the column is signed or the step is a signed input's top one, and the
periphery accumulates acc[c] = (acc[c] << dac) + code * n (restarting on `first`). On `last` the
column sums go out on `o` (a signed array of C), TILE_LATENCY cycle later; a step is accepted every
cycle while `o` is free.

The ADC's division by the constant 2n is a multiplication by a rounded-up reciprocal and a shift,
exact for every value the clamped numerator can take (`reciprocal`); both clamps act before it.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from cdsl.contract.ref.cim_tile import adc_range
from cdsl.hw._checks import check_bool, check_int
from cdsl.hw._reduce import chained_sum, emit_on_last

TILE_LATENCY = 1


def reciprocal(divisor: int, bound: int) -> tuple[int, int]:
    """(m, k) with floor(a / divisor) == (a * m) >> k for every integer 0 <= a < bound.

    m = ceil(2**k / divisor) with 2**k >= bound * divisor: a*m / 2**k = a/divisor + a*e/(divisor*2**k)
    with 0 <= e < divisor, and that error term is below a / 2**k < 1 / divisor, too small to carry
    a/divisor (at most 1 - 1/divisor above its floor) past the next integer."""
    check_int("divisor", divisor, lo=1)
    check_int("bound", bound, lo=1)
    k = (bound * divisor - 1).bit_length()
    return -(-(1 << k) // divisor), k


def x_shape(dac: int, x_signed: bool) -> Shape:
    """A row's DAC level: `dac` bits, one more (signed) when the top step of a signed input is signed."""
    return signed(dac + 1) if x_signed else unsigned(dac)


class CimTile(wiring.Component):
    """R x C crossbar, ADCs and shift-add (see the module docstring)."""

    def __init__(self, *, cells, col_signed, steps, step_frac: int, adc: int, dac: int, x_signed: bool,
                 acc_width: int):
        cells = np.asarray(cells)
        if cells.ndim != 2 or not np.issubdtype(cells.dtype, np.integer) or 0 in cells.shape:
            raise ValueError(f"cells must be a non-empty 2-D integer array [rows, cols], not {cells!r}")
        self._cells = cells.astype(np.int64)
        rows, cols = cells.shape
        self._col_signed = tuple(check_bool("col_signed", v) for v in col_signed)
        self._steps = tuple(check_int("step", v, lo=1) for v in steps)
        if len(self._col_signed) != cols or len(self._steps) != cols:
            raise ValueError(f"col_signed and steps need {cols} entries each, got {len(self._col_signed)!r} and "
                             f"{len(self._steps)!r}")
        self._frac = check_int("step_frac", step_frac, lo=0, hi=16)
        self._adc = check_int("adc", adc, lo=1, hi=24)
        self._dac = check_int("dac", dac, lo=1, hi=16)
        self._x_signed = check_bool("x_signed", x_signed)
        self._acc_width = check_int("acc_width", acc_width, lo=2, hi=64)
        layout = data.StructLayout({"x": data.ArrayLayout(x_shape(dac, x_signed), rows), "first": 1, "last": 1})
        super().__init__({
            "i": In(stream.Signature(layout)),
            "o": Out(stream.Signature(data.ArrayLayout(signed(acc_width), cols))),
        })

    def elaborate(self, platform):
        m = Module()
        step = self.i.payload
        rows, cols = self._cells.shape
        levels = 1 << self._adc
        xlo, xhi = (-(1 << self._dac), (1 << self._dac) - 1) if self._x_signed else (0, (1 << self._dac) - 1)
        acc = Signal(self.o.payload.shape())
        acc_next = Signal(self.o.payload.shape())
        for c in range(cols):
            column = self._cells[:, c]
            terms = [(r, int(v)) for r, v in enumerate(column) if v]
            plo = sum(min(xlo * v, xhi * v) for _, v in terms)
            phi = sum(max(xlo * v, xhi * v) for _, v in terms)
            psum = Signal(signed(max(abs(plo), abs(phi)).bit_length() + 1), name=f"psum{c}")
            m.d.comb += psum.eq(chained_sum(m, [step.x[r] * v for r, v in terms], len(psum), name=f"psum{c}_"))

            n = self._steps[c]
            signed_now = Signal(name=f"signed{c}")
            m.d.comb += signed_now.eq(1 if self._col_signed[c] else (self._x_signed & step.first))
            # a = psum * 2**(f+1) + n - 2n * lo, so that code = lo + floor(a / 2n), clamped to [lo, hi]
            s_lo, _ = adc_range(self._adc, True)
            offset = Mux(signed_now, n - 2 * n * s_lo, n)
            a = Signal(signed(psum.shape().width + self._frac + 1 + (2 * n * levels).bit_length() + 1), name=f"a{c}")
            m.d.comb += a.eq((psum << (self._frac + 1)) + offset)
            mult, shift = reciprocal(2 * n, 2 * n * levels)
            index = Signal(range(levels), name=f"level{c}")
            with m.If(a < 0):
                m.d.comb += index.eq(0)
            with m.Elif(a >= 2 * n * levels):
                m.d.comb += index.eq(levels - 1)
            with m.Else():
                m.d.comb += index.eq((a.as_unsigned() * mult) >> shift)
            code = Signal(signed(self._adc + 1), name=f"code{c}")
            m.d.comb += code.eq(Mux(signed_now, index + s_lo, index))
            m.d.comb += acc_next[c].eq(Mux(step.first, 0, acc[c] << self._dac) + code * n)
        emit_on_last(m, i=self.i, o=self.o, acc=acc, acc_next=acc_next, last=step.last)
        return m

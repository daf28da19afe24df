"""Requantization unit (`RequantUnit`): the contract of `cdsl.contract.ref.requant.requantize`, per channel.

    y = clamp((acc * M[ch] + (1 << (S[ch]-1))) >> S[ch], qmin, qmax)   (S >= 1; no rounding term for S == 0)

`>>` is arithmetic (floor). A ReLU that follows is fused by qmin = 0. Stream in `i`: payload
`acc` (signed, `acc_width`) and `ch` (the output channel selecting M, S); stream out `o`: y,
`out_bits` wide (signed or not). Two pipeline stages (multiply-add, then shift-clamp):
y is valid LATENCY = 2 cycles after its `acc` was accepted; one result per cycle.

The unit builds the lean form of the same contract (`cdsl.contract.ref.requant.lean_requant`, proved
equal on every call over `acc_range`, the accumulators the block can reach; default: all of
`acc_width`): two compares against the edges of the staircase, and inside the window the narrow
d = acc - lo_edge times a short multiplier, plus an offset, shifted; no clamp. One (M, S): the
multiplier is a constant, built as signed-digit shift-adds (`csd_digits`). Per-channel tables: the
forms share one shift (`lean_requant_table`) and d is multiplied by the channel's entry. Stage 1: the
edges and the multiply-add; stage 2: the shift and the output select.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._checks import check_bool, check_int, const_table, index_shape
from cdsl.contract.ref.requant import MULT_BITS, LeanRequant, csd_digits, lean_requant, lean_requant_table

LATENCY = 2


class RequantUnit(wiring.Component):
    """Per-channel requantization (see the module docstring).

    multipliers, shifts: tuples of ints, one per channel, or one for all channels.
    acc_range: (lo, hi), the accumulators that can arrive (default: every value of acc_width); with
    one (M, S) the unit is exact on this range only.
    """

    def __init__(self, *, acc_width: int, channels: int, multipliers, shifts,
                 qmin: int, qmax: int, out_bits: int, out_signed: bool, acc_range: tuple[int, int] | None = None):
        self._acc_width = check_int("acc_width", acc_width, lo=2, hi=64)
        self._channels = check_int("channels", channels, lo=1)
        self._multipliers = tuple(int(v) for v in multipliers)
        self._shifts = tuple(int(v) for v in shifts)
        if len(self._multipliers) not in (1, channels) or len(self._shifts) != len(self._multipliers):
            raise ValueError(f"multipliers/shifts need 1 or {channels} entries each, got "
                             f"{len(self._multipliers)!r} and {len(self._shifts)!r}")
        for mult in self._multipliers:
            check_int("multiplier", mult, lo=0, hi=(1 << MULT_BITS) - 1)
        for shift in self._shifts:
            check_int("shift", shift, lo=0, hi=62)
        self._out_bits = check_int("out_bits", out_bits, lo=1, hi=32)
        self._out_signed = check_bool("out_signed", out_signed)
        out_shape = Shape(out_bits, out_signed)
        check_int("qmin", qmin, lo=-(1 << (out_bits - 1)) if out_signed else 0)
        check_int("qmax", qmax, lo=qmin, hi=(1 << (out_bits - (1 if out_signed else 0))) - 1)
        self._qmin, self._qmax = qmin, qmax
        full = (-(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1)
        if acc_range is None:
            acc_range = full
        lo, hi = (check_int("acc_range", int(v)) for v in acc_range)
        if not full[0] <= lo <= hi <= full[1]:
            raise ValueError(f"acc_range must lie within [{full[0]}, {full[1]}] (acc_width {acc_width}), got {acc_range!r}")
        self._acc_range = (lo, hi)
        if len(self._multipliers) == 1:
            self._lean = (lean_requant(self._multipliers[0], self._shifts[0], qmin, qmax, lo, hi),)
        else:
            self._lean = lean_requant_table(self._multipliers, self._shifts, qmin, qmax, lo, hi)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"acc": signed(acc_width), "ch": index_shape(channels)}))),
            "o": Out(stream.Signature(out_shape)),
        })

    @property
    def lean(self) -> tuple[LeanRequant, ...]:
        """The lean forms the unit builds, one per channel (one for all channels with a single (M, S))."""
        return self._lean

    def elaborate(self, platform):
        return self._elaborate_lean() if len(self._lean) == 1 else self._elaborate_table()

    def _pipeline(self, m):
        """The two stages' handshake: (advance1, advance2, s1_valid)."""
        s1_valid = Signal()
        advance2 = ~self.o.valid | self.o.ready
        advance1 = ~s1_valid | advance2
        m.d.comb += self.i.ready.eq(advance1)
        with m.If(advance1):
            m.d.sync += s1_valid.eq(self.i.valid)
        with m.If(advance2):
            m.d.sync += self.o.valid.eq(s1_valid)
        return advance1, advance2

    def _elaborate_table(self):
        """Per channel: the same lean form with every constant from a table indexed by `ch`, one shared
        shift (`lean_requant_table`), and a multiplier of the window's d by the channel's mult."""
        m = Module()
        forms = self._lean
        acc, ch = self.i.payload.acc, self.i.payload.ch
        shift = max((f.shift for f in forms if f.mult), default=0)  # the staircases' shared shift
        window_bits = max(max(f.window_bits for f in forms), 1)
        levels = max(f.hi_out - f.lo_out for f in forms)
        prod_width = max(window_bits, levels.bit_length()) + shift + 1
        mult_width = max(max(f.mult.bit_length() for f in forms), 1)
        edge_shape = signed(self._acc_width + 1)  # an edge may lie one past the accumulator's range
        out_shape = signed(self._out_bits + 1)

        def table(values, shape, index=ch):
            return const_table(values, shape, index)

        advance1, advance2 = self._pipeline(m)
        d = Signal(unsigned(window_bits))
        m.d.comb += d.eq(acc - table([f.lo_edge for f in forms], edge_shape))
        s1_below, s1_above, s1_ch = Signal(), Signal(), Signal.like(ch)
        s1_prod = Signal(unsigned(prod_width))
        with m.If(advance1):
            m.d.sync += [
                s1_below.eq(acc < table([f.lo_edge for f in forms], edge_shape)),
                s1_above.eq(acc >= table([f.hi_edge for f in forms], edge_shape)),
                s1_prod.eq(d * table([f.mult for f in forms], unsigned(mult_width))
                           + table([f.offset % (1 << prod_width) for f in forms], unsigned(prod_width))),
                s1_ch.eq(ch),
            ]
        lo_out = table([f.lo_out for f in forms], out_shape, s1_ch)
        hi_out = table([f.hi_out for f in forms], out_shape, s1_ch)
        y = Mux(s1_below, lo_out, Mux(s1_above, hi_out, lo_out + 1 + s1_prod[shift:]))
        with m.If(advance2):
            m.d.sync += self.o.payload.eq(y)
        return m

    def _elaborate_lean(self):
        m = Module()
        lean = self._lean[0]
        acc = self.i.payload.acc
        s1_valid, s1_below, s1_above = Signal(), Signal(), Signal()
        levels = lean.hi_out - lean.lo_out  # (d * mult + offset) >> shift <= levels - 2 inside the window
        prod_width = max(lean.window_bits, levels.bit_length()) + lean.shift + 1
        s1_prod = Signal(unsigned(prod_width))  # (d * mult + offset) < (levels) * 2**shift, never negative

        advance2 = ~self.o.valid | self.o.ready
        advance1 = ~s1_valid | advance2
        m.d.comb += self.i.ready.eq(advance1)

        # the window's d = acc - lo_edge, window_bits wide (wraps outside the window, where it is unused)
        d = Signal(unsigned(max(lean.window_bits, 1)))
        m.d.comb += d.eq(acc - lean.lo_edge)
        # d * mult + offset modulo 2**prod_width (the true value fits): the offset's bits, then one
        # add per signed digit of mult, each over the bits at and above the digit's position
        total = Const(lean.offset % (1 << prod_width), prod_width)
        for k, sign in csd_digits(lean.mult) if lean.window_bits else ():
            if k >= prod_width:
                continue
            high = total[k:]
            step = Signal(unsigned(prod_width - k))
            m.d.comb += step.eq(high + d if sign > 0 else high - d)
            total = Cat(total[:k], step) if k else step
        with m.If(advance1):
            m.d.sync += [
                s1_valid.eq(self.i.valid),
                s1_below.eq(acc < lean.lo_edge),
                s1_above.eq(acc >= lean.hi_edge),
                s1_prod.eq(total),
            ]
        inner = lean.lo_out + 1 + s1_prod[lean.shift:]
        y = Mux(s1_below, lean.lo_out, Mux(s1_above, lean.hi_out, inner))
        if lean.lo_out == lean.hi_out:
            y = Const(lean.lo_out, self.o.payload.shape())
        with m.If(advance2):
            m.d.sync += [
                self.o.valid.eq(s1_valid),
                self.o.payload.eq(y),
            ]
        return m

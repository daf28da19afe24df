"""Requantization unit (`RequantUnit`): the contract of `cdsl.contract.ref.requant.requantize`, per channel.

    y = clamp((acc * M[ch] + (1 << (S[ch]-1))) >> S[ch], qmin, qmax)   (S >= 1; no rounding term for S == 0)

`>>` is arithmetic (floor). A ReLU that follows is fused by qmin = 0. Stream in `i`: payload
`acc` (signed, `acc_width`) and `ch` (the output channel selecting M, S); stream out `o`: y,
`out_bits` wide (signed or not). Two pipeline stages (multiply-add, then shift-clamp):
y is valid LATENCY = 2 cycles after its `acc` was accepted; one result per cycle.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._checks import check_bool, check_int, const_table, index_shape
from cdsl.contract.ref.requant import MULT_BITS

LATENCY = 2


class RequantUnit(wiring.Component):
    """Per-channel requantization (see the module docstring).

    multipliers, shifts: tuples of ints, one per channel, or one for all channels.
    """

    def __init__(self, *, acc_width: int, channels: int, multipliers, shifts,
                 qmin: int, qmax: int, out_bits: int, out_signed: bool):
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
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"acc": signed(acc_width), "ch": index_shape(channels)}))),
            "o": Out(stream.Signature(out_shape)),
        })

    def elaborate(self, platform):
        m = Module()
        per_channel = len(self._multipliers) > 1
        prod_width = self._acc_width + MULT_BITS + 1
        max_shift = max(self._shifts)

        def table(values, shape):
            if not per_channel:
                return Const(values[0], shape)
            return const_table(values, shape, self.i.payload.ch)

        mult = table(self._multipliers, unsigned(MULT_BITS))
        rounding = table([(1 << (s - 1)) if s > 0 else 0 for s in self._shifts], unsigned(max(max_shift, 1)))
        shift = table(self._shifts, index_shape(max_shift + 1))

        s1_valid = Signal()
        s1_prod = Signal(signed(prod_width))
        s1_shift = Signal(index_shape(max_shift + 1))

        advance2 = ~self.o.valid | self.o.ready
        advance1 = ~s1_valid | advance2
        m.d.comb += self.i.ready.eq(advance1)

        with m.If(advance1):
            m.d.sync += [
                s1_valid.eq(self.i.valid),
                s1_prod.eq(self.i.payload.acc * mult + rounding),
                s1_shift.eq(shift),
            ]

        shifted = Signal(signed(prod_width))
        m.d.comb += shifted.eq(s1_prod >> s1_shift)
        clamped = Mux(shifted < self._qmin, self._qmin, Mux(shifted > self._qmax, self._qmax, shifted))
        with m.If(advance2):
            m.d.sync += [
                self.o.valid.eq(s1_valid),
                self.o.payload.eq(clamped),
            ]
        return m

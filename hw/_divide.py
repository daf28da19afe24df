"""One step of a restoring division, one quotient bit per cycle (the row engines' reciprocals and
divisions by a constant): with the divisor register holding `d << b` on the step that forms quotient
bit b, the step compares, subtracts when it fits, shifts the bit into the quotient and the divisor
one place right. After the last step (b = 0) the quotient is floor(dividend / d) and the remainder
register holds the remainder, provided dividend < d << (bits of the quotient)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal


def restoring_step(m: Module, *, rem: Signal, div: Signal, quo: Signal) -> None:
    fits = rem >= div
    m.d.sync += [quo.eq((quo << 1) | fits), div.eq(div >> 1)]
    with m.If(fits):
        m.d.sync += rem.eq(rem - div)

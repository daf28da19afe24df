"""i-GELU engine: `cdsl.contract.ref.int_gelu.int_gelu` then the one requantization, element by element.

Stream in `i` (`cdsl.hw.streams.frame_layout`, signed `in_bits`): codes, any number per inference,
`last` on the final one. Stream out `o` (`out_bits`, signed or not): requantize(int_gelu(q), M, S),
`last` carried with its element. Per element: |q| clipped at `cut`, e = sign(q) (c - (cut - |q|)**2),
y = q (e + c) (one squarer, one multiplier), then the shared `RequantUnit` (2 pipeline stages).
One element per cycle: n elements take n + 2 cycles from the first taken to the last taken (input
always valid, output always ready). `last` rides beside the requantizer in a small FIFO (order kept).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._checks import check_bool, check_int
from cdsl.hw.requant_unit import LATENCY as RQ_LATENCY, RequantUnit
from cdsl.hw.streams import frame_signature

__all__ = ["Gelu", "element_cycles"]


def element_cycles(n: int) -> int:
    """Cycles of n elements (see the module docstring)."""
    return check_int("n", n, lo=1) + RQ_LATENCY


class Gelu(wiring.Component):
    def __init__(self, *, in_bits: int, cut: int, c: int, multiplier: int, shift: int, qmin: int, qmax: int,
                 out_bits: int, out_signed: bool):
        self._in_bits = check_int("in_bits", in_bits, lo=2, hi=16)
        self._cut = check_int("cut", cut, lo=1, hi=1 << 20)
        self._c = check_int("c", c, lo=1, hi=1 << 40)
        self._rq = dict(multipliers=(int(multiplier),), shifts=(int(shift),), qmin=qmin, qmax=qmax,
                        out_bits=check_int("out_bits", out_bits, lo=1, hi=32),
                        out_signed=check_bool("out_signed", out_signed))
        super().__init__({
            "i": In(frame_signature(in_bits, True)),
            "o": Out(frame_signature(out_bits, out_signed)),
        })

    def elaborate(self, platform):
        m = Module()
        cut, c = self._cut, self._c
        q_max = 1 << (self._in_bits - 1)
        y_max = q_max * (2 * c + cut * cut)  # |q| * |e + c| <= |q| * (2c + cut**2)
        m.submodules.rq = rq = RequantUnit(acc_width=y_max.bit_length() + 1, channels=1, **self._rq)
        m.submodules.lasts = lasts = fifo.SyncFIFOBuffered(width=1, depth=RQ_LATENCY + 2)

        q = self.i.payload.data
        mag = Signal(range(max(q_max, cut) + 1))
        m.d.comb += mag.eq(Mux(q < 0, -q, q))
        gap = Signal(range(cut + 1))
        m.d.comb += gap.eq(cut - Mux(mag > cut, cut, mag))
        e = Signal(signed((c + cut * cut).bit_length() + 1))
        m.d.comb += e.eq(c - gap * gap)
        y = Signal(signed(y_max.bit_length() + 1))
        m.d.comb += y.eq(q * (Mux(q < 0, -e, Mux(q == 0, 0, e)) + c))

        push = self.i.valid & rq.i.ready & lasts.w_rdy
        m.d.comb += [
            rq.i.payload.acc.eq(y), rq.i.payload.ch.eq(0),
            rq.i.valid.eq(self.i.valid & lasts.w_rdy),
            self.i.ready.eq(rq.i.ready & lasts.w_rdy),
            lasts.w_data.eq(self.i.payload.last), lasts.w_en.eq(push),
            self.o.valid.eq(rq.o.valid),
            rq.o.ready.eq(self.o.ready),
            self.o.payload.data.eq(rq.o.payload),
            self.o.payload.last.eq(lasts.r_data),
            lasts.r_en.eq(self.o.valid & self.o.ready),
        ]
        return m

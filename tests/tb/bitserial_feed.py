"""A test feeder for `BitSerialMac`: takes the full-width steps of `cdsl.hw.mac.step_layout(mask=True)`
(x, w: lanes signed weights, mask, first, last) and hands the MAC one bit-plane word per cycle, as a
synchronous plane ROM would: the word at `plane_index` (registered; w_bits-1 when a step starts):
at a set plane b of the row's mask, plane b with the next set plane below it; at w_bits-1, the top
set plane (a zero word when none is set). The words are written out here in plain gates, not taken
from `plane_rom_words`, so the block tests check the MAC against an independent statement of what
the ROM holds.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw.bitserial_mac import BitSerialMac
from cdsl.hw.mac import step_layout


class PlaneFedMac(wiring.Component):
    def __init__(self, *, lanes: int, a_width: int, a_signed: bool, w_bits: int, acc_width: int):
        self._args = dict(lanes=lanes, a_width=a_width, a_signed=a_signed, w_bits=w_bits, acc_width=acc_width)
        super().__init__({
            "i": In(stream.Signature(step_layout(lanes=lanes, a_width=a_width, a_signed=a_signed, w_bits=w_bits,
                                                 mask=True))),
            "precision": In(range(w_bits + 1)),
            "o": Out(stream.Signature(signed(acc_width))),
        })

    def elaborate(self, platform):
        m = Module()
        lanes, bits = self._args["lanes"], self._args["w_bits"]
        m.submodules.mac = mac = BitSerialMac(**self._args)
        step = self.i.payload
        cur = Signal.like(mac.plane_index, init=bits - 1)  # the word the ROM was addressed with last cycle
        m.d.sync += cur.eq(Mux(self.i.valid & mac.i.ready, bits - 1, mac.plane_index))  # a new step: the top word
        top = Signal.like(cur)  # the top set plane (0 when none)
        for b in range(bits):
            with m.If(step.mask[b]):
                m.d.comb += top.eq(b)
        plane = Signal.like(cur)
        m.d.comb += plane.eq(Mux(cur == bits - 1, top, cur))
        word = mac.i.payload.w
        for b in range(bits):
            with m.If(plane == b):
                m.d.comb += word.bits.eq(Cat(step.w[j].as_unsigned()[b] for j in range(lanes)))
                for c in range(b):  # the highest set plane below b wins (assigned last)
                    with m.If(step.mask[c]):
                        m.d.comb += [word.next.eq(c), word.more.eq(1)]
        m.d.comb += word.plane.eq(plane)
        m.d.comb += [mac.i.valid.eq(self.i.valid), self.i.ready.eq(mac.i.ready), mac.precision.eq(self.precision),
                     mac.i.payload.x.eq(step.x), mac.i.payload.first.eq(step.first), mac.i.payload.last.eq(step.last)]
        wiring.connect(m, mac.o, wiring.flipped(self.o))
        return m

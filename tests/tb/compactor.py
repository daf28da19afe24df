"""`Compactor`: a test-only engine whose output length varies per inference, as a token selector's does.

Stream in `i` (frame layout, signed values, `last` on an inference's final word); stream out `o`:
the first word always, then every later word >= `threshold`, in order, with `last` on the final
word kept. The latest kept word is held back until the next kept word, or the input's `last`, shows
whether it is the final one. Reference: `compact(words, threshold)`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw.streams import frame_signature


def compact(words: list[int], threshold: int) -> list[int]:
    return [w for k, w in enumerate(words) if k == 0 or w >= threshold]


class Compactor(wiring.Component):
    def __init__(self, *, bits: int, threshold: int):
        self._bits, self._threshold = bits, threshold
        super().__init__({"i": In(frame_signature(bits, True)), "o": Out(frame_signature(bits, True))})

    def elaborate(self, platform):
        m = Module()
        first = Signal(init=1)  # the next input word is the first of its inference
        held = Signal(signed(self._bits))
        holding = Signal()  # `held` is a kept word not sent yet
        flush = Signal()  # the inference ended: `held` goes out as its final word
        out_valid, out_last = Signal(), Signal()
        out_data = Signal(signed(self._bits))
        m.d.comb += [self.o.valid.eq(out_valid), self.o.payload.data.eq(out_data), self.o.payload.last.eq(out_last)]
        free = ~out_valid | self.o.ready
        m.d.comb += self.i.ready.eq(free & ~flush)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += out_valid.eq(0)

        x, last = self.i.payload.data, self.i.payload.last
        keep = first | (x >= self._threshold)
        with m.If(flush & free):
            m.d.sync += [out_data.eq(held), out_last.eq(1), out_valid.eq(1), holding.eq(0), flush.eq(0)]
        with m.Elif(self.i.valid & self.i.ready):
            m.d.sync += first.eq(last)
            with m.If(keep):
                with m.If(holding):  # the held word is not the final one: it goes out now
                    m.d.sync += [out_data.eq(held), out_last.eq(0), out_valid.eq(1)]
                m.d.sync += [held.eq(x), holding.eq(1), flush.eq(last)]
            with m.Elif(last):  # dropped, and the inference ends: the held word is the final one
                m.d.sync += [out_data.eq(held), out_last.eq(1), out_valid.eq(1), holding.eq(0)]
        return m

"""Stream FIFO: `amaranth.lib.fifo.SyncFIFOBuffered` behind typed stream ports `i` and `o`.

A word accepted on `i` is offered on `o` LATENCY cycles later (the FIFO's output register);
`depth` words fit, and `i.ready` is low only when they are all taken. The plan puts one, holding a
whole inference, in front of every input of a join (`cdsl.hw.plan`).
"""

from __future__ import annotations

from amaranth.hdl import Module, Shape
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._checks import check_int

LATENCY = 2  # cycles from a word's transfer on `i` to the first cycle it is valid on `o`


class StreamFifo(wiring.Component):
    def __init__(self, *, signature: stream.Signature, depth: int):
        if not isinstance(signature, stream.Signature):
            raise TypeError(f"signature must be a stream.Signature, not {signature!r}")
        self._width = Shape.cast(signature.members["payload"].shape).width
        self._depth = check_int("depth", depth, lo=1)
        super().__init__({"i": In(signature), "o": Out(signature)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=self._width, depth=self._depth)
        m.d.comb += [
            q.w_data.eq(self.i.payload.as_value()),
            q.w_en.eq(self.i.valid),
            self.i.ready.eq(q.w_rdy),
            self.o.payload.eq(q.r_data),
            self.o.valid.eq(q.r_rdy),
            q.r_en.eq(self.o.ready),
        ]
        return m

"""Stream FIFO: `amaranth.lib.fifo.SyncFIFOBuffered` behind typed stream ports `i` and `o`.

A word accepted on `i` is offered on `o` LATENCY cycles later (the FIFO's output register);
`depth` words fit (`entries`: three for a depth of two), and `i.ready` is low only when they are all
taken. The plan puts one, holding a whole inference, in front of every input of a join (`cdsl.hw.plan`).
"""

from __future__ import annotations

from amaranth.hdl import Module, Shape
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._checks import check_int

LATENCY = 2  # cycles from a word's transfer on `i` to the first cycle it is valid on `o`


def entries(depth: int) -> int:
    """The `SyncFIFOBuffered` depth that holds `depth` words and takes them one per cycle: `depth`, but
    three for two (a depth-2 `SyncFIFOBuffered` is a one-entry FIFO in front of its read register, full
    while the first word moves on, so it refuses a second word offered right behind it; the same holds
    for `cdsl.hw.frame_gate`)."""
    return 3 if depth == 2 else depth


class StreamFifo(wiring.Component):
    def __init__(self, *, signature: stream.Signature, depth: int):
        if not isinstance(signature, stream.Signature):
            raise TypeError(f"signature must be a stream.Signature, not {signature!r}")
        self._width = Shape.cast(signature.members["payload"].shape).width
        self._depth = check_int("depth", depth, lo=1)
        super().__init__({"i": In(signature), "o": Out(signature)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=self._width, depth=entries(self._depth))
        m.d.comb += [
            q.w_data.eq(self.i.payload.as_value()),
            q.w_en.eq(self.i.valid),
            self.i.ready.eq(q.w_rdy),
            self.o.payload.eq(q.r_data),
            self.o.valid.eq(q.r_rdy),
            q.r_en.eq(self.o.ready),
        ]
        return m

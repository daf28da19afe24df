"""Add engine: the elementwise sum of two streams, in lock step, rescaled onto the output type.

A pair of words moves when both inputs are valid and the requantization unit takes it; the sum
`a * M_a + b * M_b` goes through a `RequantUnit` with M = 1 and the node's shift, which rounds and
saturates exactly as `cdsl.contract.ref.add` says. Ports `i0`, `i1`, `o` (frame streams); the
output's `last` is `i0`'s, carried beside the requantizer in a small FIFO, so a frame shorter than the
stream's largest shape (tokens after a selector) ends where its input ends. The cycle model is
`AddNode.delay` (cdsl.hw.kinds.add).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw.kinds.add import AddNode
from cdsl.hw.requant_unit import LATENCY as RQ_LATENCY
from cdsl.hw.requant_unit import RequantUnit
from cdsl.hw.streams import frame_signature


class AddEngine(wiring.Component):
    def __init__(self, *, node: AddNode):
        if not isinstance(node, AddNode):
            raise TypeError(f"node must be an AddNode, not {node!r}")
        self._node = node
        a, b = node.in_types
        super().__init__({"i0": In(frame_signature(a.bits, a.signed)), "i1": In(frame_signature(b.bits, b.signed)),
                          "o": Out(frame_signature(node.out_type.bits, node.out_type.signed))})

    def elaborate(self, platform):
        m = Module()
        node = self._node
        m.submodules.requant = rq = RequantUnit(
            acc_width=node.acc_width, channels=1, multipliers=(1,), shifts=(node.shift,), qmin=node.qmin,
            qmax=node.qmax, out_bits=node.out_type.bits, out_signed=node.out_type.signed)
        m.submodules.lasts = lasts = fifo.SyncFIFOBuffered(width=1, depth=RQ_LATENCY + 2)
        acc = Signal(signed(node.acc_width))
        m.d.comb += acc.eq(self.i0.payload.data * node.mult_a + self.i1.payload.data * node.mult_b)
        both = self.i0.valid & self.i1.valid & lasts.w_rdy
        take = rq.i.ready & lasts.w_rdy
        m.d.comb += [
            rq.i.valid.eq(both),
            rq.i.payload.acc.eq(acc),
            self.i0.ready.eq(take & self.i1.valid),
            self.i1.ready.eq(take & self.i0.valid),
            lasts.w_data.eq(self.i0.payload.last), lasts.w_en.eq(both & rq.i.ready),
            self.o.valid.eq(rq.o.valid),
            self.o.payload.data.eq(rq.o.payload),
            self.o.payload.last.eq(lasts.r_data),
            lasts.r_en.eq(self.o.valid & self.o.ready),
            rq.o.ready.eq(self.o.ready),
        ]
        return m

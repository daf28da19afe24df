"""Pool engine: one max or average pooling layer, stream in, stream out.

A `FrameBuffer` (one channel per word), a depthwise `WindowGenerator`, a `PoolReduce` (max, or the
window sum), for an average a `RequantUnit` with (M, S) = avg_multiplier(kernel), and the output's
`last` flag. Ports `i`, `o`. The cycle model is `PoolNode.delay` (cdsl.hw.kinds.pool).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._engine import fetch_stage, frame_schedule
from cdsl.hw.frame_buffer import FrameBuffer
from cdsl.hw.kinds.pool import PoolNode
from cdsl.hw.pool_reduce import PoolReduce
from cdsl.hw.requant_unit import RequantUnit
from cdsl.hw.streams import drive_last, frame_signature
from cdsl.hw.window_generator import WindowGenerator


class PoolEngine(wiring.Component):
    def __init__(self, *, node: PoolNode):
        if not isinstance(node, PoolNode):
            raise TypeError(f"node must be a PoolNode, not {node!r}")
        self._node = node
        in_type, out_type = node.in_types[0], node.out_type
        super().__init__({"i": In(frame_signature(in_type.bits, in_type.signed)),
                          "o": Out(frame_signature(out_type.bits, out_type.signed))})

    def elaborate(self, platform):
        m = Module()
        node = self._node
        in_type = node.in_types[0]
        m.submodules.frame = fb = FrameBuffer(shape=node.in_shape, lanes=1, a_width=in_type.bits,
                                              a_signed=in_type.signed)
        m.submodules.windows = gen = WindowGenerator(
            in_shape=node.in_shape, out_shape=node.out_shape, kernel=node.kernel, stride=node.stride, padding=0,
            groups=1, depthwise=True)
        wiring.connect(m, wiring.flipped(self.i), fb.i)
        frame_schedule(m, fb=fb, gen=gen)
        m.submodules.reducer = red = PoolReduce(kind=node.reduce, a_width=in_type.bits, a_signed=in_type.signed,
                                                out_width=node.acc_width)
        fetch = fetch_stage(m, fb=fb, gen=gen, ready=red.i.ready)
        m.d.comb += [red.i.valid.eq(fetch.valid), red.i.payload.first.eq(fetch.first),
                     red.i.payload.last.eq(fetch.last), red.i.payload.x.eq(Mux(fetch.pad, 0, fb.rd_data[0]))]
        result = red.o
        if node.requant is not None:
            mult, shift, qmin, qmax = node.requant
            m.submodules.requant = rq = RequantUnit(
                acc_width=node.acc_width, channels=1, multipliers=(mult,), shifts=(shift,), qmin=qmin, qmax=qmax,
                out_bits=node.out_type.bits, out_signed=node.out_type.signed)
            m.d.comb += [rq.i.valid.eq(red.o.valid), rq.i.payload.acc.eq(red.o.payload), red.o.ready.eq(rq.i.ready)]
            result = rq.o
        m.d.comb += [self.o.valid.eq(result.valid), self.o.payload.data.eq(result.payload),
                     result.ready.eq(self.o.ready)]
        drive_last(m, self.o, words=node.out_type.words)
        return m

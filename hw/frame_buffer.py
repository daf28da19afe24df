"""Full-frame input buffer: stores one (C, H, W) frame, `lanes` channels per word.

Stream in `i` (`cdsl.hw.streams.frame_layout`): the frame's activations in row-major (C, H, W)
order; activation (c, y, x) goes to word `(c // lanes) * H*W + y*W + x`, lane `c % lanes` (a dense
input (K,) is (K, 1, 1)). The buffer counts the frame's words; the stream's `last` flag is not used.
After the last activation `full` rises and `i` stops accepting until `release` is pulsed
(the engine has issued every read of the frame). Read side: `rd_addr`, `rd_en`, `rd_data`
(all lanes of a word), one cycle of latency, data held while `rd_en` is low.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._checks import check_bool, check_int, index_shape
from cdsl.hw.streams import frame_signature


class FrameBuffer(wiring.Component):
    def __init__(self, *, shape, lanes: int, a_width: int, a_signed: bool):
        if not (isinstance(shape, tuple) and len(shape) == 3 and all(isinstance(v, int) and v >= 1 for v in shape)):
            raise ValueError(f"shape must be a (C, H, W) tuple of positive ints, not {shape!r}")
        self._shape = shape
        self._lanes = check_int("lanes", lanes, lo=1)
        self._a_shape = Shape(check_int("a_width", a_width, lo=1, hi=32), check_bool("a_signed", a_signed))
        c, h, w = shape
        self._depth = -(-c // lanes) * h * w
        super().__init__({
            "i": In(frame_signature(a_width, a_signed)),
            "full": Out(1),
            "release": In(1),
            "rd_addr": In(index_shape(self._depth)),
            "rd_en": In(1),
            "rd_data": Out(data.ArrayLayout(self._a_shape, lanes)),
        })

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform):
        m = Module()
        c, h, w = self._shape
        pixels = h * w
        lanes = self._lanes
        mem = memory.Memory(shape=data.ArrayLayout(self._a_shape, lanes), depth=max(self._depth, 2), init=[])
        m.submodules.mem = mem
        wr = mem.write_port(granularity=1)
        rd = mem.read_port()

        pixel = Signal(index_shape(pixels))
        lane = Signal(index_shape(lanes))
        base = Signal(index_shape(self._depth + pixels))  # (c // lanes) * H*W
        channel = Signal(index_shape(c))
        full = Signal()
        m.d.comb += self.full.eq(full)

        fire = self.i.valid & ~full
        m.d.comb += [
            self.i.ready.eq(~full),
            wr.addr.eq(base + pixel),
            wr.data.eq(Cat(*[Value.cast(self.i.payload.data)] * lanes)),
            wr.en.eq(Mux(fire, Const(1, lanes) << lane, 0)),
            rd.addr.eq(self.rd_addr),
            rd.en.eq(self.rd_en),
            self.rd_data.eq(rd.data),
        ]

        last_pixel = pixel == pixels - 1
        last_lane = lane == lanes - 1
        last_channel = channel == c - 1
        with m.If(fire):
            m.d.sync += pixel.eq(Mux(last_pixel, 0, pixel + 1))
            with m.If(last_pixel):
                m.d.sync += [
                    lane.eq(Mux(last_lane | last_channel, 0, lane + 1)),
                    base.eq(Mux(last_channel, 0, Mux(last_lane, base + pixels, base))),
                    channel.eq(Mux(last_channel, 0, channel + 1)),
                ]
                with m.If(last_channel):
                    m.d.sync += full.eq(1)
        with m.If(self.release):
            m.d.sync += full.eq(0)
        return m

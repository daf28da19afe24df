"""Full-frame input buffer, double-buffered: two banks of one (C, H, W) frame, `lanes` channels per word.

Stream in `i` (`cdsl.hw.streams.frame_layout`): the frame's activations in row-major (C, H, W)
order; activation (c, y, x) goes to word `(c // lanes) * H*W + y*W + x`, lane `c % lanes` of the bank
being written (a dense input (K,) is (K, 1, 1)). The buffer counts the frame's words; the stream's
`last` flag is not used.

Ping-pong: the writer fills one bank while the engine reads the other. After a frame's last
activation its bank becomes full and the writer moves on to the other bank, which it fills as soon
as that bank is free; `i` waits only while both banks hold frames. The reader sees `full` (the bank
it reads holds a frame) and `next_full` (the other bank does too); pulsing `release` (the engine has
issued every read of its frame) frees its bank and moves the reader to the other one. Read side:
`rd_addr` (within the frame), `rd_en`, `rd_data` (all lanes of a word), one cycle of latency, data
held while `rd_en` is low. With `frames=1` the buffer has one bank and refuses input from `full`
until `release` (what the engines had before double-buffering; kept for comparison).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._checks import check_bool, check_int, index_shape
from cdsl.hw.streams import frame_signature


class FrameBuffer(wiring.Component):
    def __init__(self, *, shape, lanes: int, a_width: int, a_signed: bool, frames: int = 2):
        if not (isinstance(shape, tuple) and len(shape) == 3 and all(isinstance(v, int) and v >= 1 for v in shape)):
            raise ValueError(f"shape must be a (C, H, W) tuple of positive ints, not {shape!r}")
        self._shape = shape
        self._lanes = check_int("lanes", lanes, lo=1)
        self._a_shape = Shape(check_int("a_width", a_width, lo=1, hi=32), check_bool("a_signed", a_signed))
        self._frames = check_int("frames", frames, lo=1, hi=2)
        c, h, w = shape
        self._depth = -(-c // lanes) * h * w
        super().__init__({
            "i": In(frame_signature(a_width, a_signed)),
            "full": Out(1),
            "next_full": Out(1),
            "release": In(1),
            "rd_addr": In(index_shape(self._depth)),
            "rd_en": In(1),
            "rd_data": Out(data.ArrayLayout(self._a_shape, lanes)),
        })

    @property
    def depth(self) -> int:
        """Words of one frame (one bank)."""
        return self._depth

    @property
    def frames(self) -> int:
        return self._frames

    @property
    def bits(self) -> int:
        """Storage of the buffer: every bank's words, `lanes` activations each."""
        return self._frames * self._depth * self._lanes * self._a_shape.width

    def elaborate(self, platform):
        m = Module()
        c, h, w = self._shape
        pixels = h * w
        lanes = self._lanes
        depth, frames = self._depth, self._frames
        mem = memory.Memory(shape=data.ArrayLayout(self._a_shape, lanes), depth=max(frames * depth, 2), init=[])
        m.submodules.mem = mem
        wr = mem.write_port(granularity=1)
        rd = mem.read_port()

        pixel = Signal(index_shape(pixels))
        lane = Signal(index_shape(lanes))
        base = Signal(index_shape(depth + pixels))  # (c // lanes) * H*W
        channel = Signal(index_shape(c))
        full = [Signal(name=f"full{b}") for b in range(frames)]
        wbank = Signal()  # the bank being written (always 0 with one bank)
        rbank = Signal()  # the bank being read

        def pick(bank):
            return full[0] if frames == 1 else Mux(bank, full[1], full[0])

        m.d.comb += [self.full.eq(pick(rbank)), self.next_full.eq(0 if frames == 1 else pick(~rbank))]

        def offset(bank, addr):
            return addr if frames == 1 else Mux(bank, depth, 0) + addr

        writable = ~pick(wbank)
        fire = self.i.valid & writable
        m.d.comb += [
            self.i.ready.eq(writable),
            wr.addr.eq(offset(wbank, base + pixel)),
            wr.data.eq(Cat(*[Value.cast(self.i.payload.data)] * lanes)),
            wr.en.eq(Mux(fire, Const(1, lanes) << lane, 0)),
            rd.addr.eq(offset(rbank, self.rd_addr)),
            rd.en.eq(self.rd_en),
            self.rd_data.eq(rd.data),
        ]

        last_pixel = pixel == pixels - 1
        last_lane = lane == lanes - 1
        last_channel = channel == c - 1
        done = fire & last_pixel & last_channel  # the frame's last activation
        with m.If(fire):
            m.d.sync += pixel.eq(Mux(last_pixel, 0, pixel + 1))
            with m.If(last_pixel):
                m.d.sync += [
                    lane.eq(Mux(last_lane | last_channel, 0, lane + 1)),
                    base.eq(Mux(last_channel, 0, Mux(last_lane, base + pixels, base))),
                    channel.eq(Mux(last_channel, 0, channel + 1)),
                ]
        for b in range(frames):
            with m.If(self.release & (rbank == b)):
                m.d.sync += full[b].eq(0)
            with m.If(done & (wbank == b)):  # never the bank being released: a full bank takes no input
                m.d.sync += full[b].eq(1)
        if frames > 1:
            with m.If(done):
                m.d.sync += wbank.eq(~wbank)
            with m.If(self.release):
                m.d.sync += rbank.eq(~rbank)
        return m

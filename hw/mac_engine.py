"""MAC engine: one dense or conv2d layer, stream in, stream out.

It owns a `FrameBuffer` (the whole input frame, filled from `i`), a `WindowGenerator` (addresses of
every step of every output, zero padding), a weight ROM (`lib.memory`, one word = `lanes` weights
of one step, input channels past Ci are zero; or the unit's own, `MacUnit.weights`), the MAC unit's reducer (`Mac` or `BitSerialMac`,
with whatever else the unit wires: a plane-mask ROM, a latched precision), the bias add, a
`RequantUnit`, and the output's `last` flag. It emits one activation per transfer on `o`, in
row-major (C, H, W) order.

Schedule: load the frame (one activation per cycle as offered), then compute every output; the
next frame may load once every read of the current one is issued. Ports: `i`, `o`, and one input
per runtime setting of the unit (`precision` for a bit-serial MAC). The cycle model is
`MacEngineNode.delay` (cdsl.hw.kinds._mac).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._checks import const_table, index_shape
from cdsl.hw._engine import fetch_stage, frame_schedule
from cdsl.hw.frame_buffer import FrameBuffer
from cdsl.hw.kinds._mac import MacEngineNode
from cdsl.hw.requant_unit import RequantUnit
from cdsl.hw.streams import drive_last, frame_signature
from cdsl.hw.window_generator import WindowGenerator


def weight_rom(m: Module, node: MacEngineNode, reducer, *, step, advance) -> None:
    """The default weight ROM (`MacUnit.weights`): one word of `lanes` full-width weights per step."""
    words = weight_rom_words(node)
    wrom = m.submodules.weights = memory.Memory(shape=data.ArrayLayout(signed(node.w_bits), node.lanes),
                                                depth=max(len(words), 2), init=words)
    wrd = wrom.read_port()
    m.d.comb += [wrd.addr.eq(step.waddr), wrd.en.eq(advance), reducer.i.payload.w.eq(wrd.data)]


def weight_rom_words(node: MacEngineNode) -> list[list[int]]:
    """The weight ROM contents: word co*steps + (g*k + ky)*k + kx holds lanes j = channels g*L + j."""
    co_n, ci_n, k, _ = node.weight.shape
    lanes = node.lanes
    words = []
    for co in range(co_n):
        for g in range(node.groups):
            for ky in range(k):
                for kx in range(k):
                    words.append([int(node.weight[co, g * lanes + j, ky, kx]) if g * lanes + j < ci_n else 0
                                  for j in range(lanes)])
    return words


class MacEngine(wiring.Component):
    def __init__(self, *, node: MacEngineNode):
        if not isinstance(node, MacEngineNode):
            raise TypeError(f"node must be a MacEngineNode, not {node!r}")
        self._node = node
        in_type, out_type = node.in_types[0], node.out_type
        ports = {"i": In(frame_signature(in_type.bits, in_type.signed)),
                 "o": Out(frame_signature(out_type.bits, out_type.signed))}
        ports.update({s.name: In(range(s.hi + 1)) for s in node.settings()})
        super().__init__(ports)

    @property
    def node(self) -> MacEngineNode:
        return self._node

    def elaborate(self, platform):
        m = Module()
        node = self._node
        in_type = node.in_types[0]
        lanes = node.lanes
        co_n = node.out_shape[0]

        m.submodules.frame = fb = FrameBuffer(shape=node.in_shape, lanes=lanes, a_width=in_type.bits,
                                              a_signed=in_type.signed)
        m.submodules.windows = gen = WindowGenerator(
            in_shape=node.in_shape, out_shape=node.out_shape, kernel=node.kernel, stride=node.stride,
            padding=node.padding, groups=node.groups, depthwise=False)
        wiring.connect(m, wiring.flipped(self.i), fb.i)
        start = frame_schedule(m, fb=fb, gen=gen)

        m.submodules.reducer = red = node.unit.component(node)
        fetch = fetch_stage(m, fb=fb, gen=gen, ready=red.i.ready)
        m.d.comb += [red.i.valid.eq(fetch.valid), red.i.payload.first.eq(fetch.first),
                     red.i.payload.last.eq(fetch.last)]
        for j in range(lanes):
            m.d.comb += red.i.payload.x[j].eq(Mux(fetch.pad, 0, fb.rd_data[j]))
        node.unit.weights(m, node, red, step=fetch.step, advance=fetch.advance)
        node.unit.wire(m, node, self, red, step=fetch.step, advance=fetch.advance, start=start)

        # ---- output side: bias add (per output channel), requantization, `last`
        channel = Signal(index_shape(co_n))
        pixel = Signal(index_shape(node.pixels))
        with m.If(red.o.valid & red.o.ready):
            m.d.sync += pixel.eq(Mux(pixel == node.pixels - 1, 0, pixel + 1))
            with m.If(pixel == node.pixels - 1):
                m.d.sync += channel.eq(Mux(channel == co_n - 1, 0, channel + 1))
        per_channel = len(node.multipliers) > 1
        m.submodules.requant = rq = RequantUnit(
            acc_width=node.acc_width, channels=co_n if per_channel else 1, multipliers=node.multipliers,
            shifts=node.shifts, qmin=node.qmin, qmax=node.qmax, out_bits=node.out_type.bits,
            out_signed=node.out_type.signed, acc_range=node.acc_range)
        acc = red.o.payload
        if node.bias is not None:
            with_bias = Signal(signed(node.acc_width))
            m.d.comb += with_bias.eq(acc + const_table(node.bias, signed(node.acc_width), channel))
            acc = with_bias
        m.d.comb += [rq.i.valid.eq(red.o.valid), rq.i.payload.acc.eq(acc), red.o.ready.eq(rq.i.ready)]
        if per_channel:
            m.d.comb += rq.i.payload.ch.eq(channel)
        m.d.comb += [self.o.valid.eq(rq.o.valid), self.o.payload.data.eq(rq.o.payload), rq.o.ready.eq(self.o.ready)]
        drive_last(m, self.o, words=node.out_type.words)
        return m

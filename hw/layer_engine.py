"""Layer engine: one dense, conv2d or pooling layer of the network, stream in, stream out.

It owns a `FrameBuffer` (the whole input frame, filled from `i`), a `WindowGenerator`
(addresses of every step of every output, zero padding), a weight ROM (`lib.memory`,
initialized from the IntModel: one word = `lanes` weights of one step, input channels past Ci
are zero), for bit-serial engines a plane-mask ROM (one mask per output channel), the reducer
(`Mac`, `BitSerialMac`, or `PoolReduce`), the bias add and a `Requant` (not for max pooling).
It emits one activation per transfer on `o`, in row-major (C, H, W) order.

Schedule: load the frame (one activation per cycle as offered), then compute every output;
the next frame may load once every read of the current one is issued. Ports: `i`, `o`, and
for bit-serial engines `precision` (0 = full; latched when a frame starts computing).
The cycle model is `cdsl.hw.plan.engine_delay`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from cdsl.dsl.ir import PoolKind
from cdsl.hw._checks import const_table, index_shape
from cdsl.hw.bitserial_mac import BitSerialMac
from cdsl.hw.frame_buffer import FrameBuffer
from cdsl.hw.mac import Mac
from cdsl.hw.plan import EngineConfig, EngineKind
from cdsl.hw.pool_reduce import PoolReduce
from cdsl.hw.requant import Requant
from cdsl.hw.window_generator import WindowGenerator


def weight_rom_words(cfg: EngineConfig) -> list[list[int]]:
    """The weight ROM contents: word co*steps + (g*k + ky)*k + kx holds lanes j = channels g*L + j."""
    co_n, ci_n, k, _ = cfg.weight.shape
    lanes = cfg.lanes
    words = []
    for co in range(co_n):
        for g in range(cfg.groups):
            for ky in range(k):
                for kx in range(k):
                    words.append([int(cfg.weight[co, g * lanes + j, ky, kx]) if g * lanes + j < ci_n else 0
                                  for j in range(lanes)])
    return words


class LayerEngine(wiring.Component):
    def __init__(self, *, config: EngineConfig):
        if not isinstance(config, EngineConfig):
            raise TypeError(f"config must be an EngineConfig, not {config!r}")
        if config.kind is EngineKind.RELU:
            raise ValueError(f"a ReLU is not a layer engine (use cdsl.hw.relu.Relu): {config.name!r}")
        self._cfg = config
        ports = {
            "i": In(stream.Signature(Shape(config.in_bits, config.in_signed))),
            "o": Out(stream.Signature(Shape(config.out_bits, config.out_signed))),
        }
        if config.bitserial:
            ports["precision"] = In(range(config.w_bits + 1))
        super().__init__(ports)

    @property
    def config(self) -> EngineConfig:
        return self._cfg

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        lanes = 1 if cfg.pooling else cfg.lanes
        co_n = cfg.out_shape[0]

        m.submodules.frame = fb = FrameBuffer(shape=cfg.in_shape, lanes=lanes, a_width=cfg.in_bits,
                                              a_signed=cfg.in_signed)
        m.submodules.windows = gen = WindowGenerator(
            in_shape=cfg.in_shape, out_shape=cfg.out_shape, kernel=cfg.kernel, stride=cfg.stride,
            padding=cfg.padding, groups=cfg.groups, depthwise=cfg.pooling)
        wiring.connect(m, wiring.flipped(self.i), fb.i)

        # ---- control: start a frame when it is loaded, release it when every step is issued
        running = Signal()
        start = fb.full & ~running & ~gen.busy
        release = running & ~gen.busy
        m.d.comb += [gen.start.eq(start), fb.release.eq(release)]
        with m.If(start):
            m.d.sync += running.eq(1)
        with m.If(release):
            m.d.sync += running.eq(0)

        # ---- reducer
        if cfg.pooling:
            kind = PoolKind.MAX if cfg.kind is EngineKind.MAXPOOL else PoolKind.AVG
            m.submodules.reducer = red = PoolReduce(kind=kind, a_width=cfg.in_bits, a_signed=cfg.in_signed,
                                                    out_width=cfg.acc_width)
        elif cfg.bitserial:
            m.submodules.reducer = red = BitSerialMac(lanes=lanes, a_width=cfg.in_bits, a_signed=cfg.in_signed,
                                                      w_bits=cfg.w_bits, acc_width=cfg.acc_width)
            precision = Signal(range(cfg.w_bits + 1))
            with m.If(start):
                m.d.sync += precision.eq(self.precision)
            m.d.comb += red.precision.eq(precision)
        else:
            m.submodules.reducer = red = Mac(lanes=lanes, a_width=cfg.in_bits, a_signed=cfg.in_signed,
                                             w_bits=cfg.w_bits, acc_width=cfg.acc_width)

        # ---- fetch stage: frame buffer and ROM reads, one cycle
        f_valid = Signal()
        f_pad = Signal()
        f_first = Signal()
        f_last = Signal()
        advance = ~f_valid | red.i.ready
        step = gen.o.payload
        m.d.comb += [
            gen.o.ready.eq(advance),
            fb.rd_en.eq(advance),
            fb.rd_addr.eq(step.addr),
        ]
        with m.If(advance):
            m.d.sync += [
                f_valid.eq(gen.o.valid),
                f_pad.eq(step.pad),
                f_first.eq(step.first),
                f_last.eq(step.last),
            ]
        m.d.comb += [
            red.i.valid.eq(f_valid),
            red.i.payload.first.eq(f_first),
            red.i.payload.last.eq(f_last),
        ]
        if cfg.pooling:
            m.d.comb += red.i.payload.x.eq(Mux(f_pad, 0, fb.rd_data[0]))
        else:
            for j in range(lanes):
                m.d.comb += red.i.payload.x[j].eq(Mux(f_pad, 0, fb.rd_data[j]))
            words = weight_rom_words(cfg)
            wrom = memory.Memory(shape=data.ArrayLayout(signed(cfg.w_bits), lanes), depth=max(len(words), 2), init=words)
            m.submodules.weights = wrom
            wrd = wrom.read_port()
            m.d.comb += [wrd.addr.eq(step.waddr), wrd.en.eq(advance), red.i.payload.w.eq(wrd.data)]
            if cfg.bitserial:
                masks = [int(v) for v in cfg.masks()]
                mrom = memory.Memory(shape=unsigned(cfg.w_bits), depth=max(len(masks), 2), init=masks)
                m.submodules.masks = mrom
                mrd = mrom.read_port()
                m.d.comb += [mrd.addr.eq(step.row), mrd.en.eq(advance), red.i.payload.mask.eq(mrd.data)]

        # ---- output side: bias add, requantization, channel counter
        pixels = cfg.out_shape[1] * cfg.out_shape[2]
        pixel = Signal(index_shape(pixels))
        channel = Signal(index_shape(co_n))
        with m.If(red.o.valid & red.o.ready):
            m.d.sync += pixel.eq(Mux(pixel == pixels - 1, 0, pixel + 1))
            with m.If(pixel == pixels - 1):
                m.d.sync += channel.eq(Mux(channel == co_n - 1, 0, channel + 1))

        if cfg.kind is EngineKind.MAXPOOL:
            m.d.comb += [
                self.o.valid.eq(red.o.valid),
                self.o.payload.eq(red.o.payload),
                red.o.ready.eq(self.o.ready),
            ]
            return m

        channels = co_n if len(cfg.multipliers) > 1 else 1
        m.submodules.requant = rq = Requant(
            acc_width=cfg.acc_width, channels=channels, multipliers=cfg.multipliers, shifts=cfg.shifts,
            qmin=cfg.qmin, qmax=cfg.qmax, out_bits=cfg.out_bits, out_signed=cfg.out_signed)
        acc = red.o.payload
        if cfg.bias is not None:
            bias = const_table(cfg.bias, signed(cfg.acc_width), channel)
            with_bias = Signal(signed(cfg.acc_width))
            m.d.comb += with_bias.eq(acc + bias)
            acc = with_bias
        m.d.comb += [
            rq.i.valid.eq(red.o.valid),
            rq.i.payload.acc.eq(acc),
            red.o.ready.eq(rq.i.ready),
        ]
        if channels > 1:
            m.d.comb += rq.i.payload.ch.eq(channel)
        wiring.connect(m, wiring.flipped(self.o), rq.o)
        return m

"""Window address generator over a full-frame buffer (conv2d, dense as a 1x1 conv, pooling).

For every output (co, oy, ox) in row-major (C, H, W) order it emits one step per (g, ky, kx):
the frame-buffer word address `g*H*W + iy*W + ix` with iy = oy*stride_y - padding + ky and
ix = ox*stride_x - padding + kx, `pad` set where (iy, ix) falls outside the image (the engine feeds
zeros there), the weight-ROM address `co*steps + (g*kh + ky)*kw + kx`, the output channel `row`, and
`first`/`last` marking the first and last step of each output. g runs over the lane groups of
input channels; `depthwise` (pooling) uses the output channel as the frame channel, g = co.
A window is `kernel` square or (kh, kw), its `stride` the same in both directions or (sy, sx): a
crossbar mapping that computes n adjacent outputs from one wider window reads (k, k + (n-1)*s)
windows with stride (s, n*s).

Control: a `start` pulse (while not `busy`) starts one frame; `busy` falls after the last
step's transfer. The steps are offered on `o` from the cycle after `start`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._checks import check_bool, check_int, index_shape


def _pair(name, value, lo):
    """An int or an (int, int) pair, as a checked pair."""
    pair = value if isinstance(value, tuple) and len(value) == 2 else (value, value)
    return tuple(check_int(name, v, lo=lo) for v in pair)


def _shape3(name, value):
    if not (isinstance(value, tuple) and len(value) == 3 and all(isinstance(v, int) and v >= 1 for v in value)):
        raise ValueError(f"{name} must be a (C, H, W) tuple of positive ints, not {value!r}")
    return value


class WindowGenerator(wiring.Component):
    def __init__(self, *, in_shape, out_shape, kernel: int, stride: int, padding: int, groups: int,
                 depthwise: bool):
        self._in_shape = _shape3("in_shape", in_shape)
        self._out_shape = _shape3("out_shape", out_shape)
        self._kh, self._kw = _pair("kernel", kernel, 1)
        self._sy, self._sx = _pair("stride", stride, 1)
        self._padding = check_int("padding", padding, lo=0)
        self._groups = check_int("groups", groups, lo=1)
        self._depthwise = check_bool("depthwise", depthwise)
        if depthwise and (groups != 1 or in_shape[0] != out_shape[0]):
            raise ValueError(f"depthwise windows need groups=1 and equal channels, got groups={groups!r}, "
                             f"in_shape={in_shape!r}, out_shape={out_shape!r}")
        c, h, w = in_shape
        self._steps = groups * self._kh * self._kw
        frame_words = (c if depthwise else groups) * h * w
        layout = data.StructLayout({
            "addr": index_shape(frame_words),
            "pad": 1,
            "waddr": index_shape(out_shape[0] * self._steps),
            "row": index_shape(out_shape[0]),
            "first": 1,
            "last": 1,
        })
        super().__init__({
            "start": In(1),
            "busy": Out(1),
            "o": Out(stream.Signature(layout)),
        })

    def elaborate(self, platform):
        m = Module()
        c, h, w = self._in_shape
        co_n, ho_n, wo_n = self._out_shape
        kh, kw = self._kh, self._kw
        co = Signal(index_shape(co_n))
        oy = Signal(index_shape(ho_n))
        ox = Signal(index_shape(wo_n))
        g = Signal(index_shape(self._groups))
        ky = Signal(index_shape(kh))
        kx = Signal(index_shape(kw))

        coord_shape = signed(max(h, w, ho_n * self._sy + kh, wo_n * self._sx + kw).bit_length() + 2)
        iy = Signal(coord_shape)
        ix = Signal(coord_shape)
        m.d.comb += [
            iy.eq(oy * self._sy - self._padding + ky),
            ix.eq(ox * self._sx - self._padding + kx),
        ]
        pad = (iy < 0) | (iy >= h) | (ix < 0) | (ix >= w)
        channel = co if self._depthwise else g
        addr = channel * (h * w) + iy.as_unsigned() * w + ix.as_unsigned()
        step = (g * kh + ky) * kw + kx

        last_kx = kx == kw - 1
        last_ky = ky == kh - 1
        last_g = g == self._groups - 1
        last_step = last_kx & last_ky & last_g
        first_step = (kx == 0) & (ky == 0) & (g == 0)
        last_ox = ox == wo_n - 1
        last_oy = oy == ho_n - 1
        last_co = co == co_n - 1

        m.d.comb += [
            self.o.valid.eq(self.busy),
            self.o.payload.addr.eq(Mux(pad, 0, addr)),
            self.o.payload.pad.eq(pad),
            self.o.payload.waddr.eq(co * self._steps + step),
            self.o.payload.row.eq(co),
            self.o.payload.first.eq(first_step),
            self.o.payload.last.eq(last_step),
        ]

        busy = Signal()
        m.d.comb += self.busy.eq(busy)
        with m.If(~busy):
            with m.If(self.start):
                m.d.sync += [busy.eq(1), co.eq(0), oy.eq(0), ox.eq(0), g.eq(0), ky.eq(0), kx.eq(0)]
        with m.Elif(self.o.ready):
            m.d.sync += kx.eq(Mux(last_kx, 0, kx + 1))
            with m.If(last_kx):
                m.d.sync += ky.eq(Mux(last_ky, 0, ky + 1))
                with m.If(last_ky):
                    m.d.sync += g.eq(Mux(last_g, 0, g + 1))
                    with m.If(last_g):
                        m.d.sync += ox.eq(Mux(last_ox, 0, ox + 1))
                        with m.If(last_ox):
                            m.d.sync += oy.eq(Mux(last_oy, 0, oy + 1))
                            with m.If(last_oy):
                                m.d.sync += co.eq(Mux(last_co, 0, co + 1))
                                with m.If(last_co):
                                    m.d.sync += busy.eq(0)
        return m

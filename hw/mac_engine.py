"""MAC engine: one dense or conv2d layer, stream in, stream out.

It owns a `FrameBuffer` (the whole input frame, filled from `i`), a `WindowGenerator` (addresses of
every step of every output, zero padding), a weight ROM (`lib.memory`, one word = `lanes` weights
of one step, input channels past Ci are zero; or the unit's own, `MacUnit.weights`), the MAC unit's reducer (`Mac` or `BitSerialMac`,
with whatever else the unit wires: a plane-mask ROM, a latched precision), the bias add, a
`RequantUnit`, and the output's `last` flag. It emits one activation per transfer on `o`, in
row-major (C, H, W) order.

With `pe` > 1 (`MacEngineNode.pe`) the engine holds `pe` copies of the reducer in lock step: they
read the same step (activations, first/last, and whatever else the unit wires, copied from the first
copy's), each its own `lanes` weights of the ROM word, and their sums are taken together into a
serializer that sends them one per cycle, in channel order, through the bias add and requantization.

Schedule: load the frame (one activation per cycle as offered), then compute every output; the
frame buffer is double-buffered, so the next frame loads while this one computes. Ports: `i`, `o`, and one input
per runtime setting of the unit (`precision` for a bit-serial MAC). The cycle model is
`MacEngineNode.delay` (cdsl.hw.kinds._mac).
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal, signed
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


def pe_view(node: MacEngineNode, unit: int) -> MacEngineNode:
    """What copy `unit` of a PE engine's MAC unit computes: channels r*pe + unit of every row r, as an
    engine of `rows` channels and PE 1 (its weights; the unit's view of the rows, `MacUnit.pe_view`)."""
    import dataclasses

    return dataclasses.replace(node, weight=node.weight[unit::node.pe], out_shape=(node.rows, *node.out_shape[1:]),
                               pe=1, unit=node.unit.pe_view(node))


def weight_rom_words(node: MacEngineNode) -> list[list[int]]:
    """The weight ROM contents: word r*steps + (g*k + ky)*k + kx holds, for each unit u < pe, lanes
    u*L + j = the weight of output channel r*pe + u, input channel g*L + j."""
    co_n, ci_n, k, _ = node.weight.shape
    lanes, pe = node.lanes, node.pe
    words = []
    for r in range(co_n // pe):
        for g in range(node.groups):
            for ky in range(k):
                for kx in range(k):
                    words.append([int(node.weight[r * pe + u, g * lanes + j, ky, kx]) if g * lanes + j < ci_n else 0
                                  for u in range(pe) for j in range(lanes)])
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
        pe = node.pe
        m.submodules.windows = gen = WindowGenerator(
            in_shape=node.in_shape, out_shape=(node.rows, *node.out_shape[1:]), kernel=node.kernel, stride=node.stride,
            padding=node.padding, groups=node.groups, depthwise=False)
        wiring.connect(m, wiring.flipped(self.i), fb.i)
        start = frame_schedule(m, fb=fb, gen=gen)

        m.submodules.reducer = red = node.unit.component(node)
        fetch = fetch_stage(m, fb=fb, gen=gen, ready=red.i.ready)
        m.d.comb += [red.i.valid.eq(fetch.valid), red.i.payload.first.eq(fetch.first),
                     red.i.payload.last.eq(fetch.last)]
        for j in range(lanes):
            m.d.comb += red.i.payload.x[j].eq(Mux(fetch.pad, 0, fb.rd_data[j]))
        if pe == 1:
            node.unit.weights(m, node, red, step=fetch.step, advance=fetch.advance)
        else:  # each unit its own weight ROM (in its own module), on the rows' common schedule
            views = [pe_view(node, u) for u in range(pe)]
            m.submodules.weights_0 = sub = Module()
            views[0].unit.weights(sub, views[0], red, step=fetch.step, advance=fetch.advance)
        node.unit.wire(m, node, self, red, step=fetch.step, advance=fetch.advance, start=start)
        reducers = [red]
        for u in range(1, pe):  # lock-step copies: the first copy's inputs, their own weights
            m.submodules[f"reducer_{u}"] = copy = node.unit.component(node)  # a MAC in reports (roles)
            _follow(m, copy, red)
            m.submodules[f"weights_{u}"] = sub = Module()
            views[u].unit.weights(sub, views[u], copy, step=fetch.step, advance=fetch.advance)
            reducers.append(copy)

        # ---- output side: (the serializer of the pe sums), bias add per output channel, requantization, `last`
        per_channel = len(node.multipliers) > 1
        m.submodules.requant = rq = RequantUnit(
            acc_width=node.acc_width, channels=co_n if per_channel else 1, multipliers=node.multipliers,
            shifts=node.shifts, qmin=node.qmin, qmax=node.qmax, out_bits=node.out_type.bits,
            out_signed=node.out_type.signed, acc_range=node.acc_range)
        if pe == 1:
            channel = Signal(index_shape(co_n))
            pixel = Signal(index_shape(node.pixels))
            with m.If(red.o.valid & red.o.ready):
                m.d.sync += pixel.eq(Mux(pixel == node.pixels - 1, 0, pixel + 1))
                with m.If(pixel == node.pixels - 1):
                    m.d.sync += channel.eq(Mux(channel == co_n - 1, 0, channel + 1))
            acc, acc_valid = red.o.payload, red.o.valid
            m.d.comb += red.o.ready.eq(rq.i.ready)
        else:
            serialize = self._serialize if node.pixels == 1 else self._reorder
            acc, acc_valid, channel = serialize(m, reducers, ready=rq.i.ready)
        if node.bias is not None:
            with_bias = Signal(signed(node.acc_width))
            m.d.comb += with_bias.eq(acc + const_table(node.bias, signed(node.acc_width), channel))
            acc = with_bias
        m.d.comb += [rq.i.valid.eq(acc_valid), rq.i.payload.acc.eq(acc)]
        if per_channel:
            m.d.comb += rq.i.payload.ch.eq(channel)
        m.d.comb += [self.o.valid.eq(rq.o.valid), self.o.payload.data.eq(rq.o.payload), rq.o.ready.eq(self.o.ready)]
        drive_last(m, self.o, words=node.out_type.words)
        return m

    def _serialize(self, m, reducers, *, ready):
        """Take the pe units' sums together (one row: channels row*pe .. row*pe + pe - 1, one pixel) and
        send them one per cycle; returns (sum, valid, channel). The next row's sums are taken as the
        last one leaves, so with pe <= steps the units never wait."""
        node = self._node
        pe, acc_shape = node.pe, signed(node.acc_width)
        held = Signal()
        unit = Signal(index_shape(pe))
        row = Signal(index_shape(node.rows))
        sums = [Signal(acc_shape, name=f"sum{u}") for u in range(pe)]
        leaving_last = held & ready & (unit == pe - 1)
        take = reducers[0].o.valid & (~held | leaving_last)
        for r in reducers:
            m.d.comb += r.o.ready.eq(take)
        with m.If(held & ready):
            m.d.sync += unit.eq(Mux(unit == pe - 1, 0, unit + 1))
            with m.If(unit == pe - 1):
                m.d.sync += [held.eq(0), row.eq(Mux(row == node.rows - 1, 0, row + 1))]
        with m.If(take):
            m.d.sync += [held.eq(1), unit.eq(0)] + [sums[u].eq(r.o.payload) for u, r in enumerate(reducers)]
        acc = Signal(acc_shape)
        channel = Signal(index_shape(node.out_shape[0]))
        m.d.comb += [acc.eq(Array(sums)[unit]), channel.eq(row * pe + unit)]
        return acc, held, channel


    def _reorder(self, m, reducers, *, ready):
        """Several pixels per channel: the pe units' sums of one row (pe channels at every pixel, pixel by
        pixel) are written into one bank of a double-buffered output buffer, then read out channel by
        channel (every pixel of channel row*pe, then of row*pe + 1, ...), the (C, H, W) order, while the
        next row fills the other bank; returns (sum, valid, channel)."""
        node = self._node
        pe, pixels, acc_shape = node.pe, node.pixels, signed(node.acc_width)
        m.submodules.outputs = buf = memory.Memory(shape=data.ArrayLayout(acc_shape, pe), depth=2 * pixels, init=[])
        wr, rd = buf.write_port(), buf.read_port()
        full = [Signal(name=f"out_full{b}") for b in range(2)]
        wbank, rbank = Signal(), Signal()
        wpix = Signal(index_shape(pixels))
        writable = ~Mux(wbank, full[1], full[0])
        take = reducers[0].o.valid & writable
        for r in reducers:
            m.d.comb += r.o.ready.eq(writable)
        m.d.comb += [wr.addr.eq(Mux(wbank, pixels, 0) + wpix), wr.en.eq(take)]
        for u, r in enumerate(reducers):
            m.d.comb += wr.data[u].eq(r.o.payload)
        filled = take & (wpix == pixels - 1)
        with m.If(take):
            m.d.sync += wpix.eq(Mux(wpix == pixels - 1, 0, wpix + 1))
        with m.If(filled):
            m.d.sync += wbank.eq(~wbank)

        rpix = Signal(index_shape(pixels))
        unit = Signal(index_shape(pe))
        row = Signal(index_shape(node.rows))
        rd_valid = Signal()
        rd_unit = Signal(index_shape(pe))
        rd_channel = Signal(index_shape(node.out_shape[0]))
        advance = ~rd_valid | ready
        issue = Mux(rbank, full[1], full[0]) & advance
        done = issue & (rpix == pixels - 1) & (unit == pe - 1)  # the bank's last read
        m.d.comb += [rd.addr.eq(Mux(rbank, pixels, 0) + rpix), rd.en.eq(advance)]
        with m.If(advance):
            m.d.sync += [rd_valid.eq(issue), rd_unit.eq(unit), rd_channel.eq(row * pe + unit)]
        with m.If(issue):
            m.d.sync += rpix.eq(Mux(rpix == pixels - 1, 0, rpix + 1))
            with m.If(rpix == pixels - 1):
                m.d.sync += unit.eq(Mux(unit == pe - 1, 0, unit + 1))
        with m.If(done):
            m.d.sync += [rbank.eq(~rbank), row.eq(Mux(row == node.rows - 1, 0, row + 1))]
        for b in range(2):
            with m.If(done & (rbank == b)):
                m.d.sync += full[b].eq(0)
            with m.If(filled & (wbank == b)):
                m.d.sync += full[b].eq(1)
        acc = Signal(acc_shape)
        m.d.comb += acc.eq(Array(rd.data[u] for u in range(pe))[rd_unit])
        return acc, rd_valid, rd_channel


def _follow(m, copy, first) -> None:
    """Drive every input of reducer `copy` but its weights from reducer `first`'s (lock step)."""
    m.d.comb += copy.i.valid.eq(first.i.valid)
    for name in copy.i.payload.shape().members:
        if name != "w":
            m.d.comb += getattr(copy.i.payload, name).eq(getattr(first.i.payload, name))
    for name, member in copy.signature.members.items():
        if name not in ("i", "o") and member.is_port and member.flow == In:
            m.d.comb += getattr(copy, name).eq(getattr(first, name))

"""CIM engine: one dense or conv2d layer on crossbar tiles (`CimTile`), stream in, stream out.

Datapath, for the plan's `CimEngineNode` (mapping and cycle model: `cdsl.hw.cores.cim`):
- a `FrameBuffer` holds the input frame (`lanes` channels per word); a `WindowGenerator` walks the
  activations (one per output row position, or per `duplicate` adjacent ones) and their windows of
  (k, k + duplicate - 1) positions, zero padded;
- the gather stage writes each fetched word into a window register (one entry per (channel, ky, kx)
  of the window); when the window is complete it is handed to the compute stage's register, and the
  next window is gathered while the tiles work;
- the compute stage drives every tile at once with one input slice per cycle, most significant step
  first (`dac` bits: the slices of the contract's two's complement); tile (t, u) reads the rows of
  row tile t of the window;
- when the tiles' column sums come out, the digital back-end adds each output's slices (shifted by
  cell*s) and row tiles, rounds away the step's 2**-step_frac units, and writes one word per
  activation (every output channel and copy) into an output buffer (`lib.memory`);
- after the last activation the buffer is read in the output stream's (C, H, W) order, the bias
  added, requantized (`RequantUnit`) and sent on `o` with `last` on the final word. The next frame
  may load meanwhile; it starts once this read-out has issued its last read.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, Signal, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._checks import const_table, index_shape
from cdsl.hw._engine import fetch_stage, frame_schedule
from cdsl.hw.cim_tile import CimTile, x_shape
from cdsl.hw.cores.cim import CimEngineNode
from cdsl.hw.frame_buffer import FrameBuffer
from cdsl.hw.requant_unit import RequantUnit
from cdsl.hw.streams import drive_last, frame_signature
from cdsl.hw.window_generator import WindowGenerator


class CimEngine(wiring.Component):
    def __init__(self, *, node: CimEngineNode):
        if not isinstance(node, CimEngineNode):
            raise TypeError(f"node must be a CimEngineNode, not {node!r}")
        self._node = node
        in_type, out_type = node.in_types[0], node.out_type
        super().__init__({"i": In(frame_signature(in_type.bits, in_type.signed)),
                          "o": Out(frame_signature(out_type.bits, out_type.signed))})

    @property
    def node(self) -> CimEngineNode:
        return self._node

    def elaborate(self, platform):
        m = Module()
        node = self._node
        core = node.core
        in_type = node.in_types[0]
        a_shape = Shape(in_type.bits, in_type.signed)
        c_n = node.in_shape[0]
        co_n, ho_n, wo_n = node.out_shape
        dup, lanes = node.duplicate, node.lanes
        kh, kw = node.window
        area = kh * kw

        # ---- frame buffer, windows, gather
        m.submodules.frame = fb = FrameBuffer(shape=node.in_shape, lanes=lanes, a_width=in_type.bits,
                                              a_signed=in_type.signed)
        m.submodules.windows = gen = WindowGenerator(
            in_shape=node.in_shape, out_shape=(1, ho_n, node.x_groups), kernel=(kh, kw),
            stride=(node.stride, node.stride * dup), padding=node.padding, groups=node.groups, depthwise=False)
        wiring.connect(m, wiring.flipped(self.i), fb.i)
        frame_active = Signal()  # from a frame's start until its read-out has issued every read
        start = frame_schedule(m, fb=fb, gen=gen, hold=frame_active)

        x_valid = Signal()  # the compute register holds a window
        x_free = Signal()  # it can take the next one this cycle
        gather_ready = Signal()
        fetch = fetch_stage(m, fb=fb, gen=gen, ready=gather_ready)
        m.d.comb += gather_ready.eq(~fetch.last | x_free)
        step_index = Signal.like(fetch.step.waddr)  # the fetched step's position in its window
        with m.If(fetch.advance):
            m.d.sync += step_index.eq(fetch.step.waddr)
        gathered = fetch.valid & gather_ready
        handoff = gathered & fetch.last

        entries = c_n * area  # (c, ky, kx) of the window
        window = [Signal(a_shape, name=f"win{e}") for e in range(entries)]
        x_reg = [Signal(a_shape, name=f"x{e}") for e in range(entries)]
        for e in range(entries):
            c, pos = divmod(e, area)
            nxt = Signal(a_shape, name=f"win_next{e}")
            hit = gathered & (step_index == (c // lanes) * area + pos)
            m.d.comb += nxt.eq(Mux(hit, Mux(fetch.pad, 0, fb.rd_data[c % lanes]), window[e]))
            m.d.sync += window[e].eq(nxt)
            with m.If(handoff):
                m.d.sync += x_reg[e].eq(nxt)

        # ---- compute: every tile, one input step per cycle, top step first
        nb, dac = node.in_steps, core.dac
        step = Signal(range(nb), init=nb - 1)
        first, last = step == nb - 1, step == 0
        levels = []  # each window entry's DAC level at this step
        for e in range(entries):
            level = Signal(x_shape(dac, in_type.signed), name=f"level{e}")
            m.d.comb += level.eq(self._dac_level(x_reg[e], step, first))
            levels.append(level)
        tiles = []
        for t in range(node.row_tiles):
            for u in range(node.col_tiles):
                cells = node.tile_cells(t, u)
                tile = CimTile(cells=cells, col_signed=[c % node.slices == node.slices - 1 for c in range(cells.shape[1])],
                               steps=node.tile_steps(t, u), step_frac=core.step_frac, adc=core.adc, dac=dac,
                               x_signed=in_type.signed, acc_width=node.tile_acc_width)
                m.submodules[f"tile_{t}_{u}"] = tile
                tiles.append((t, u, tile))
                for r in range(cells.shape[0]):
                    m.d.comb += tile.i.payload.x[r].eq(levels[node.row_offset(t) + r])
                m.d.comb += [tile.i.valid.eq(x_valid), tile.i.payload.first.eq(first),
                             tile.i.payload.last.eq(last), tile.o.ready.eq(1)]
        accept = x_valid & tiles[0][2].i.ready  # the tiles run in lock step
        m.d.comb += x_free.eq(~x_valid | (accept & last))
        with m.If(accept):
            m.d.sync += step.eq(Mux(last, nb - 1, step - 1))
            with m.If(last):
                m.d.sync += x_valid.eq(0)
        with m.If(handoff):
            m.d.sync += x_valid.eq(1)

        # ---- back-end: slices and row tiles of each output and copy, rounded, into the output buffer
        acc_shape = signed(node.acc_width)
        f = core.step_frac
        word = Signal(data.ArrayLayout(acc_shape, co_n * dup))
        by_output = {}
        for t, u, tile in tiles:
            for o in node.tile_outputs(u):
                for j in range(dup):
                    for s in range(node.slices):
                        by_output.setdefault((o, j), []).append(tile.o.payload[node.column(u, o, s, j)] << (core.cell * s))
        for (o, j), parts in by_output.items():
            total = sum(parts[1:], start=parts[0])
            m.d.comb += word[j * co_n + o].eq((total + (1 << (f - 1))) >> f if f else total)
        m.submodules.outputs = buf = memory.Memory(shape=word.shape(), depth=max(node.activations, 2), init=[])
        wr = buf.write_port()
        stored = tiles[0][2].o.valid
        store_addr = Signal(index_shape(node.activations))
        readout = Signal()  # every activation of the frame is in the buffer
        m.d.comb += [wr.addr.eq(store_addr), wr.data.eq(word), wr.en.eq(stored)]
        with m.If(stored):
            m.d.sync += store_addr.eq(Mux(store_addr == node.activations - 1, 0, store_addr + 1))
            with m.If(store_addr == node.activations - 1):
                m.d.sync += readout.eq(1)

        # ---- read-out in (C, H, W) order: bias, requantization, `last`
        rd = buf.read_port()
        co, oy, ox, xg, j = (Signal(index_shape(n), name=name) for n, name in
                             ((co_n, "co"), (ho_n, "oy"), (wo_n, "ox"), (node.x_groups, "xg"), (dup, "copy")))
        rd_valid = Signal()
        rd_lane = Signal(index_shape(co_n * dup))
        rd_channel = Signal(index_shape(co_n))
        per_channel = len(node.multipliers) > 1
        m.submodules.requant = rq = RequantUnit(
            acc_width=node.acc_width, channels=co_n if per_channel else 1, multipliers=node.multipliers,
            shifts=node.shifts, qmin=node.qmin, qmax=node.qmax, out_bits=node.out_type.bits,
            out_signed=node.out_type.signed)
        advance = ~rd_valid | rq.i.ready
        issue = readout & advance
        final = (co == co_n - 1) & (oy == ho_n - 1) & (ox == wo_n - 1)
        m.d.comb += [rd.addr.eq(oy * node.x_groups + xg), rd.en.eq(advance)]
        with m.If(advance):
            m.d.sync += [rd_valid.eq(issue), rd_lane.eq(j * co_n + co), rd_channel.eq(co)]
        with m.If(issue):
            with m.If(ox == wo_n - 1):
                m.d.sync += [ox.eq(0), xg.eq(0), j.eq(0), oy.eq(Mux(oy == ho_n - 1, 0, oy + 1))]
                with m.If(oy == ho_n - 1):
                    m.d.sync += co.eq(Mux(co == co_n - 1, 0, co + 1))
            with m.Else():
                m.d.sync += [ox.eq(ox + 1), j.eq(Mux(j == dup - 1, 0, j + 1))]
                with m.If(j == dup - 1):
                    m.d.sync += xg.eq(xg + 1)
            with m.If(final):
                m.d.sync += [readout.eq(0), frame_active.eq(0)]
        with m.If(start):
            m.d.sync += frame_active.eq(1)
        acc = Signal(acc_shape)
        m.d.comb += acc.eq(rd.data[rd_lane])
        if node.bias is not None:
            with_bias = Signal(acc_shape)
            m.d.comb += with_bias.eq(acc + const_table(node.bias, acc_shape, rd_channel))
            acc = with_bias
        m.d.comb += [rq.i.valid.eq(rd_valid), rq.i.payload.acc.eq(acc)]
        if per_channel:
            m.d.comb += rq.i.payload.ch.eq(rd_channel)
        m.d.comb += [self.o.valid.eq(rq.o.valid), self.o.payload.data.eq(rq.o.payload), rq.o.ready.eq(self.o.ready)]
        drive_last(m, self.o, words=node.out_type.words)
        return m

    def _dac_level(self, x, step, first):
        """The DAC level of activation `x` at input step `step`: slice `step` of its two's complement
        (`dac` bits; the top slice of a signed input keeps its sign)."""
        node = self._node
        shifted = x >> (step * node.core.dac)
        low = shifted.as_unsigned()[:node.core.dac]
        if node.in_types[0].signed:
            return Mux(first, shifted, low)
        return low

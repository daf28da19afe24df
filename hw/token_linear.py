"""Token-wise linear engine: y[t] = requantize(x[t] @ W.T + b[t]) for each token of a frame.

Stream in `i` (`cdsl.hw.streams.frame_layout`): n tokens of K words, token-major, `last` on the
frame's final word (n from 1 to N; the frame also ends after N tokens). Stream out `o`: n tokens of
O words, token-major, `last` on the final word. The plan node is
`cdsl.hw.kinds.token_linear.TokenLinearNode` (its cycle model, `delay_tokens`).

Parts, the MAC engine's (`cdsl.hw.mac_engine`): the MAC unit's reducer (`MacUnit.component` of the
node's dense view: a bit-parallel `Mac` or a `BitSerialMac`) with its weight ROM
(`MacUnit.weights`, one word per step of `lanes` weights) and its wiring (`MacUnit.wire`, the
settings held at their defaults), the frame schedule and fetch stage (`cdsl.hw._engine`), and the
`RequantUnit` (per channel or per tensor, on the reachable accumulator range). Its own parts: a
token buffer (one frame, `lanes` activations per word: token t's group g at word t * G + g,
G = ceil(K / lanes)), a step generator that walks tokens, then output channels, then lane groups
(the MAC step layout: `addr`, `waddr` = channel * G + g, `row` = channel, `first`, `last`) for
the frame's n tokens without a gap between tokens, and a bias ROM (bias [O], or a per-token table
[N, O]) read one accumulator ahead.

Schedule: load the frame as offered (`i` always ready while loading), then compute every token;
the buffer is free again once the last step is issued, and the next frame starts once this one's
last output has left. Single-buffered (the verify harness runs one inference at a time).
"""

from __future__ import annotations

import types

from amaranth.hdl import Const, Module, Mux, Shape, Signal, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._checks import index_shape
from cdsl.hw._engine import fetch_stage, frame_schedule
from cdsl.hw.requant_unit import RequantUnit
from cdsl.hw.streams import frame_signature

__all__ = ["TokenLinear"]


class TokenLinear(wiring.Component):
    def __init__(self, *, node):
        from cdsl.hw.kinds.token_linear import TokenLinearNode

        if not isinstance(node, TokenLinearNode):
            raise TypeError(f"node must be a TokenLinearNode, not {node!r}")
        if node.pe != 1:
            raise ValueError(f"a token linear runs one output channel at a time (PE 1), not pe={node.pe!r}")
        self._node = node
        in_type, out_type = node.in_types[0], node.out_type
        super().__init__({"i": In(frame_signature(in_type.bits, in_type.signed)),
                          "o": Out(frame_signature(out_type.bits, out_type.signed))})

    @property
    def node(self):
        return self._node

    def elaborate(self, platform):
        m = Module()
        node = self._node
        dense = node.dense_view()
        n_max, k_n, o_n, lanes, groups = node.tokens, node.k, node.o, node.lanes, node.groups
        in_type = node.in_types[0]
        a_shape = Shape(in_type.bits, in_type.signed)
        depth = n_max * groups

        # ---- token buffer: load a frame as offered
        buf = m.submodules.frame = memory.Memory(shape=data.ArrayLayout(a_shape, lanes), depth=max(depth, 2), init=[])
        wr, rd = buf.write_port(granularity=1), buf.read_port()
        fb = types.SimpleNamespace(full=Signal(), next_full=Signal(), release=Signal(), rd_en=rd.en, rd_addr=rd.addr,
                                   rd_data=rd.data)
        kk = Signal(index_shape(k_n))  # word within the token
        lane = Signal(index_shape(lanes))
        word = Signal(index_shape(depth))
        token = Signal(index_shape(n_max))
        loaded = Signal(range(n_max + 1))  # tokens in the loaded frame
        fire = self.i.valid & ~fb.full
        end_token = kk == k_n - 1
        done = fire & (self.i.payload.last | (end_token & (token == n_max - 1)))
        m.d.comb += [self.i.ready.eq(~fb.full), wr.addr.eq(word)]
        m.d.comb += [wr.data[j].eq(self.i.payload.data) for j in range(lanes)]
        m.d.comb += wr.en.eq(Mux(fire, Const(1, lanes) << lane, 0))
        with m.If(fire):
            m.d.sync += [kk.eq(Mux(end_token, 0, kk + 1)),
                         lane.eq(Mux(end_token | (lane == lanes - 1), 0, lane + 1)),
                         word.eq(Mux(end_token | (lane == lanes - 1), word + 1, word))]
            with m.If(end_token):
                m.d.sync += token.eq(token + 1)
        with m.If(done):
            m.d.sync += [kk.eq(0), lane.eq(0), word.eq(0), token.eq(0), loaded.eq(token + 1), fb.full.eq(1)]
        with m.If(fb.release):
            m.d.sync += fb.full.eq(0)

        # ---- step generator: tokens, then output channels, then lane groups
        layout = data.StructLayout({"addr": index_shape(depth), "pad": 1, "waddr": index_shape(o_n * groups),
                                    "row": index_shape(o_n), "first": 1, "last": 1})
        gen = types.SimpleNamespace(start=Signal(), busy=Signal(),
                                    o=types.SimpleNamespace(valid=Signal(), ready=Signal(), payload=Signal(layout)))
        frame_n = Signal(range(n_max + 1))  # tokens of the frame being computed
        g = Signal(index_shape(groups))
        row = Signal(index_shape(o_n))
        t = Signal(index_shape(n_max))
        t_base = Signal(index_shape(depth))  # t * G
        r_base = Signal(index_shape(o_n * groups))  # row * G
        last_g, last_row = g == groups - 1, row == o_n - 1
        m.d.comb += [gen.o.valid.eq(gen.busy), gen.o.payload.addr.eq(t_base + g), gen.o.payload.pad.eq(0),
                     gen.o.payload.waddr.eq(r_base + g), gen.o.payload.row.eq(row),
                     gen.o.payload.first.eq(g == 0), gen.o.payload.last.eq(last_g)]
        with m.If(~gen.busy):
            with m.If(gen.start):
                m.d.sync += [gen.busy.eq(1), g.eq(0), row.eq(0), t.eq(0), t_base.eq(0), r_base.eq(0)]
        with m.Elif(gen.o.ready):
            m.d.sync += g.eq(Mux(last_g, 0, g + 1))
            with m.If(last_g):
                m.d.sync += [row.eq(Mux(last_row, 0, row + 1)), r_base.eq(Mux(last_row, 0, r_base + groups))]
                with m.If(last_row):
                    m.d.sync += [t.eq(t + 1), t_base.eq(t_base + groups)]
                    with m.If(t == frame_n - 1):
                        m.d.sync += gen.busy.eq(0)

        out_busy = Signal()  # from a frame's start to its last output word
        start = frame_schedule(m, fb=fb, gen=gen, hold=out_busy)
        frame_last = Signal(index_shape(n_max * o_n))  # index of the frame's last output word
        with m.If(start):
            m.d.sync += [frame_n.eq(loaded), frame_last.eq(loaded * o_n - 1), out_busy.eq(1)]

        # ---- the MAC unit: reducer, weight ROM, wiring (the MAC engine's parts)
        m.submodules.reducer = red = node.unit.component(dense)
        fetch = fetch_stage(m, fb=fb, gen=gen, ready=red.i.ready)
        m.d.comb += [red.i.valid.eq(fetch.valid), red.i.payload.first.eq(fetch.first),
                     red.i.payload.last.eq(fetch.last)]
        m.d.comb += [red.i.payload.x[j].eq(fb.rd_data[j]) for j in range(lanes)]
        node.unit.weights(m, dense, red, step=fetch.step, advance=fetch.advance)
        node.unit.wire(m, dense, node.fixed_ports(), red, step=fetch.step, advance=fetch.advance, start=start)

        # ---- bias (or table) add, requantization, `last`
        acc_shape = signed(node.acc_width)
        per_channel = len(node.multipliers) > 1
        m.submodules.requant = rq = RequantUnit(
            acc_width=node.acc_width, channels=o_n if per_channel else 1, multipliers=node.multipliers,
            shifts=node.shifts, qmin=node.qmin, qmax=node.qmax, out_bits=node.out_type.bits,
            out_signed=node.out_type.signed, acc_range=node.acc_range)
        biases = [int(v) for v in node.bias_values]
        brom = m.submodules.bias = memory.Memory(shape=acc_shape, depth=max(len(biases), 2), init=biases)
        brd = brom.read_port()
        channel = Signal(index_shape(o_n))
        index = Signal(index_shape(n_max * o_n))  # the accumulator's word in the frame
        take = red.o.valid & rq.i.ready
        next_channel = Mux(channel == o_n - 1, 0, channel + 1)
        next_index = Mux(index == frame_last, 0, index + 1)
        with m.If(take):
            m.d.sync += [channel.eq(next_channel), index.eq(next_index)]
        current, ahead = (index, next_index) if node.table is not None else (channel, next_channel)
        m.d.comb += brd.addr.eq(Mux(take, ahead, current))  # the bias of the accumulator held next cycle
        acc = Signal(acc_shape)
        m.d.comb += [acc.eq(red.o.payload + brd.data), red.o.ready.eq(rq.i.ready),
                     rq.i.valid.eq(red.o.valid), rq.i.payload.acc.eq(acc)]
        if per_channel:
            m.d.comb += rq.i.payload.ch.eq(channel)

        out_word = Signal(index_shape(n_max * o_n))
        final = out_word == frame_last
        m.d.comb += [self.o.valid.eq(rq.o.valid), self.o.payload.data.eq(rq.o.payload),
                     self.o.payload.last.eq(final), rq.o.ready.eq(self.o.ready)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += out_word.eq(Mux(final, 0, out_word + 1))
            with m.If(final):
                m.d.sync += out_busy.eq(0)
        return m

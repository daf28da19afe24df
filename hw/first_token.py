"""First-token engine: keeps token 0 of a frame of n tokens (1 <= n <= N, D words each, token-major),
drops the rest, and sends it [1, D] after the frame's `last` (the class token for the head).

Frame-based: every word is taken as offered (`i` always ready while loading); the first D are stored;
the frame ends on `last` (or after N D words). Then the D stored words leave one per cycle through the
memory's read port (one cycle of latency; the output register holds a word while `o` is not ready),
`last` on the final one. From the last input transfer to the last output transfer, with `o` always
ready: D + 1 cycles, whatever n (`cdsl.hw.kinds.first_token.FirstTokenNode.delay`).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._checks import index_shape
from cdsl.hw.streams import frame_signature

__all__ = ["FirstToken"]


class FirstToken(wiring.Component):
    def __init__(self, *, node):
        from cdsl.hw.kinds.first_token import FirstTokenNode

        if not isinstance(node, FirstTokenNode):
            raise TypeError(f"node must be a FirstTokenNode, not {node!r}")
        self._node = node
        t = node.in_types[0]
        super().__init__({"i": In(frame_signature(t.bits, t.signed)), "o": Out(frame_signature(t.bits, t.signed))})

    def elaborate(self, platform):
        m = Module()
        node = self._node
        t = node.in_types[0]
        n_max, d = t.shape
        mem = m.submodules.frame = memory.Memory(shape=Shape(t.bits, t.signed), depth=max(d, 2), init=[])
        wr, rd = mem.write_port(), mem.read_port()

        # ---- load: store words 0..D-1, count the frame's words
        busy = Signal()  # sending the token
        word = Signal(index_shape(n_max * d))
        fire = self.i.valid & ~busy
        done = fire & (self.i.payload.last | (word == n_max * d - 1))
        m.d.comb += [self.i.ready.eq(~busy), wr.addr.eq(word), wr.data.eq(self.i.payload.data),
                     wr.en.eq(fire & (word < d))]
        with m.If(fire):
            m.d.sync += word.eq(Mux(done, 0, word + 1))
        with m.If(done):
            m.d.sync += busy.eq(1)

        # ---- send the D stored words
        k = Signal(index_shape(d))
        advance = ~self.o.valid | self.o.ready
        issue = busy & advance
        final = k == d - 1
        out_last = Signal()
        m.d.comb += [rd.addr.eq(k), rd.en.eq(advance), self.o.payload.data.eq(rd.data),
                     self.o.payload.last.eq(out_last)]
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(issue), out_last.eq(final)]
        with m.If(issue):
            m.d.sync += k.eq(Mux(final, 0, k + 1))
            with m.If(final):
                m.d.sync += busy.eq(0)
        return m

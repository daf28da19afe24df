"""Patchify engine: an image [C, H, W] (its CHW stream) -> the patch tokens [Np + 1, C P P].

Output: a zero token (C P P zero words: the patch embedding's class-token slot, whose dot product is
0), then the Np = (H / P) (W / P) patches in row-major order, each channel-major (c, py, px): the
order of `cdsl.contract.ref.patch_embed.patches`. Token-major, `last` on the final word.

Frame-based: the image is stored as offered (`i` always ready while loading; the frame ends after
C H W words), then read out one word per cycle through the memory's read port (one cycle of
latency; the output register holds a word while `o` is not ready). From the last input transfer to
the last output transfer, with `o` always ready: (Np + 1) C P P + 1 cycles
(`cdsl.hw.kinds.patchify.PatchifyNode.delay`).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._checks import index_shape
from cdsl.hw.streams import frame_signature

__all__ = ["Patchify"]


class Patchify(wiring.Component):
    def __init__(self, *, node):
        from cdsl.hw.kinds.patchify import PatchifyNode

        if not isinstance(node, PatchifyNode):
            raise TypeError(f"node must be a PatchifyNode, not {node!r}")
        self._node = node
        t = node.in_types[0]
        super().__init__({"i": In(frame_signature(t.bits, t.signed)), "o": Out(frame_signature(t.bits, t.signed))})

    def elaborate(self, platform):
        m = Module()
        node = self._node
        t = node.in_types[0]
        ch, h, w = t.shape
        p = node.patch
        rows, cols = h // p, w // p
        words = ch * h * w
        img = m.submodules.frame = memory.Memory(shape=Shape(t.bits, t.signed), depth=max(words, 2), init=[])
        wr, rd = img.write_port(), img.read_port()

        # ---- load
        busy = Signal()  # reading out
        waddr = Signal(index_shape(words))
        fire = self.i.valid & ~busy
        done = fire & (waddr == words - 1)
        m.d.comb += [self.i.ready.eq(~busy), wr.addr.eq(waddr), wr.data.eq(self.i.payload.data), wr.en.eq(fire)]
        with m.If(fire):
            m.d.sync += waddr.eq(Mux(done, 0, waddr + 1))
        with m.If(done):
            m.d.sync += busy.eq(1)

        # ---- read out: the zero token, then patch (pr, pc), channel c, row py, column px
        zero = Signal(init=1)
        zk = Signal(index_shape(ch * p * p))
        pr, pc = Signal(index_shape(rows)), Signal(index_shape(cols))
        c, py, px = Signal(index_shape(ch)), Signal(index_shape(p)), Signal(index_shape(p))
        advance = ~self.o.valid | self.o.ready
        issue = busy & advance
        last_px, last_py, last_c = px == p - 1, py == p - 1, c == ch - 1
        last_pc, last_pr = pc == cols - 1, pr == rows - 1
        final = ~zero & last_px & last_py & last_c & last_pc & last_pr
        m.d.comb += [rd.addr.eq(c * (h * w) + (pr * p + py) * w + pc * p + px), rd.en.eq(advance)]
        out_zero, out_last = Signal(), Signal()
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(issue), out_zero.eq(zero), out_last.eq(final)]
        with m.If(issue):
            with m.If(zero):
                m.d.sync += zk.eq(zk + 1)
                with m.If(zk == ch * p * p - 1):
                    m.d.sync += [zero.eq(0), zk.eq(0)]
            with m.Else():
                m.d.sync += px.eq(Mux(last_px, 0, px + 1))
                with m.If(last_px):
                    m.d.sync += py.eq(Mux(last_py, 0, py + 1))
                    with m.If(last_py):
                        m.d.sync += c.eq(Mux(last_c, 0, c + 1))
                        with m.If(last_c):
                            m.d.sync += pc.eq(Mux(last_pc, 0, pc + 1))
                            with m.If(last_pc):
                                m.d.sync += pr.eq(Mux(last_pr, 0, pr + 1))
            with m.If(final):
                m.d.sync += [busy.eq(0), zero.eq(1)]
        m.d.comb += [self.o.payload.data.eq(Mux(out_zero, 0, rd.data)), self.o.payload.last.eq(out_last)]
        return m

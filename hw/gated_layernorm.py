"""Gated layer norm: a `FrameGate` in front of the I-LayerNorm engine, the hardware of a `LayerNormNode`.

Ports `i` and `o` (frame streams, `cdsl.hw.streams.frame_layout`): a token stream of n tokens of D
codes (n from 1 to the node's N, `last` on the final code) in, its layer norm out token by token.
The gate (`cdsl.hw.frame_gate`) takes the words as they are offered and releases the frame once its
`last` is in; the engine (`cdsl.hw.layernorm.LayerNorm`) then normalizes token after token. So the
cycles from the frame's last word in to its last result out do not depend on how the words were
spaced (`LayerNormNode.delay_tokens`, `cdsl.hw.kinds.layernorm`).
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw.kinds.layernorm import LayerNormNode
from cdsl.hw.streams import frame_signature


class GatedLayerNorm(wiring.Component):
    def __init__(self, *, node: LayerNormNode):
        if not isinstance(node, LayerNormNode):
            raise TypeError(f"node must be a LayerNormNode, not {node!r}")
        self._node = node
        (t,) = node.in_types
        super().__init__({"i": In(frame_signature(t.bits, t.signed)),
                          "o": Out(frame_signature(node.out_type.bits, node.out_type.signed))})

    def elaborate(self, platform):
        m = Module()
        node = self._node
        m.submodules.gate = gate = node.gate()
        m.submodules.engine = engine = node.engine()
        wiring.connect(m, wiring.flipped(self.i), gate.i)
        wiring.connect(m, gate.o, engine.i)
        wiring.connect(m, engine.o, wiring.flipped(self.o))
        return m

"""Elementwise ReLU on a stream: y = max(x, 0), combinational (no cycles, no storage).

Only instantiated where the input is signed; after a layer whose output type is unsigned the ReLU
is the identity and is fused away (`cdsl.hw.kinds.relu`). Ports `i`, `o` (`frame_layout`; `last`
passes through).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._checks import check_bool, check_int
from cdsl.hw.streams import frame_signature, map_words


class Relu(wiring.Component):
    def __init__(self, *, in_bits: int, out_bits: int, out_signed: bool):
        self._in_bits = check_int("in_bits", in_bits, lo=1, hi=32)
        self._out_bits = check_int("out_bits", out_bits, lo=1, hi=32)
        self._out_signed = check_bool("out_signed", out_signed)
        if out_bits < in_bits - 1:
            raise ValueError(f"out_bits={out_bits!r} cannot hold max(x, 0) of a signed {in_bits!r}-bit input")
        super().__init__({
            "i": In(frame_signature(in_bits, True)),
            "o": Out(frame_signature(out_bits, out_signed)),
        })

    def elaborate(self, platform):
        m = Module()
        x = self.i.payload.data
        map_words(m, i=self.i, o=self.o, data=Mux(x < 0, 0, x))
        return m

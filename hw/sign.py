"""Elementwise sign on a stream: y = +1 where x >= 0, -1 elsewhere (`cdsl.contract.ref.activation.sign`),
combinational (no cycles, no storage).

The output is 2-bit signed (+1/-1), the type the binary layers read. Ports `i`, `o` (`frame_layout`;
`last` passes through). An unsigned input is never negative: the output is then +1 throughout.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._checks import check_bool, check_int
from cdsl.hw.streams import frame_signature, map_words

OUT_BITS = 2  # +1 and -1 in two's complement


class Sign(wiring.Component):
    def __init__(self, *, in_bits: int, in_signed: bool):
        self._in_bits = check_int("in_bits", in_bits, lo=1, hi=64)
        self._in_signed = check_bool("in_signed", in_signed)
        super().__init__({
            "i": In(frame_signature(in_bits, in_signed)),
            "o": Out(frame_signature(OUT_BITS, True)),
        })

    def elaborate(self, platform):
        m = Module()
        map_words(m, i=self.i, o=self.o, data=Mux(self.i.payload.data < 0, -1, 1))
        return m

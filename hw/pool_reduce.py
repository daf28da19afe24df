"""Pooling reducer: the maximum or the sum of each window, one element per cycle.

Stream in `i`: payload `x` (one activation), `first` (first element of a window), `last`
(last element: the result is emitted). Stream out `o`: the window's maximum (`PoolKind.MAX`)
or its sum (`PoolKind.AVG`; the average is the sum requantized by `Requant` afterwards,
with (M, S) = `cdsl.contract.ref.pool.avg_multiplier(kernel)`), signed, `out_width` bits.
Valid LATENCY = 1 cycle after the window's last element was accepted.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from cdsl.dsl.ir import PoolKind
from cdsl.hw._reduce import emit_on_last
from cdsl.hw._checks import check_bool, check_int

LATENCY = 1


class PoolReduce(wiring.Component):
    def __init__(self, *, kind: PoolKind, a_width: int, a_signed: bool, out_width: int):
        if not isinstance(kind, PoolKind):
            raise TypeError(f"kind must be a PoolKind, not {kind!r}")
        self._kind = kind
        self._a_width = check_int("a_width", a_width, lo=1, hi=32)
        self._a_signed = check_bool("a_signed", a_signed)
        self._out_width = check_int("out_width", out_width, lo=a_width + 1, hi=64)
        layout = data.StructLayout({"x": Shape(a_width, a_signed), "first": 1, "last": 1})
        super().__init__({
            "i": In(stream.Signature(layout)),
            "o": Out(stream.Signature(signed(out_width))),
        })

    def elaborate(self, platform):
        m = Module()
        elem = self.i.payload
        acc = Signal(signed(self._out_width))
        acc_next = Signal(signed(self._out_width))
        if self._kind is PoolKind.MAX:
            m.d.comb += acc_next.eq(Mux(elem.first | (elem.x > acc), elem.x, acc))
        else:
            m.d.comb += acc_next.eq(Mux(elem.first, 0, acc) + elem.x)

        emit_on_last(m, i=self.i, o=self.o, acc=acc, acc_next=acc_next, last=elem.last)
        return m

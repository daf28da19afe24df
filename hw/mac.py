"""Bit-parallel MAC: `lanes` multiplies per cycle, accumulated over the steps of one row.

Stream in `i`: one step per transfer, payload `x` (lanes activations), `w` (lanes signed
weights), `first` (first step of a row: the accumulator restarts), `last` (last step of a
row: the sum is emitted). Stream out `o`: one signed accumulator value per row.

Timing: accepts a step every cycle (unless `o` is full and not taken); a row's sum is valid
on `o` one cycle (`LATENCY`) after its last step was accepted. The caller picks `acc_width`
from bit growth (`cdsl.hw.plan`); the sum must fit, nothing wraps silently in a correctly
sized MAC.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._reduce import chained_sum, emit_on_last
from cdsl.hw._checks import check_bool, check_int

LATENCY = 1


def step_layout(*, lanes: int, a_width: int, a_signed: bool, w_bits: int, mask: bool = False) -> data.StructLayout:
    """The payload of a MAC step (shared by `Mac` and `BitSerialMac`)."""
    a_shape = signed(a_width) if a_signed else Shape(a_width, False)
    fields = {
        "x": data.ArrayLayout(a_shape, lanes),
        "w": data.ArrayLayout(signed(w_bits), lanes),
        "first": 1,
        "last": 1,
    }
    if mask:
        fields["mask"] = w_bits
    return data.StructLayout(fields)


def check_mac_params(*, lanes: int, a_width: int, a_signed: bool, w_bits: int,
                     acc_width: int) -> tuple[int, int, bool, int, int]:
    """The checked parameters of a MAC (`Mac` and `BitSerialMac` take the same ones)."""
    return (check_int("lanes", lanes, lo=1), check_int("a_width", a_width, lo=1, hi=32),
            check_bool("a_signed", a_signed), check_int("w_bits", w_bits, lo=1, hi=32),
            check_int("acc_width", acc_width, lo=2, hi=64))


class Mac(wiring.Component):
    """Bit-parallel multiply-accumulate with `lanes` lanes (see the module docstring)."""

    def __init__(self, *, lanes: int, a_width: int, a_signed: bool, w_bits: int, acc_width: int):
        self._lanes, self._a_width, self._a_signed, self._w_bits, self._acc_width = check_mac_params(
            lanes=lanes, a_width=a_width, a_signed=a_signed, w_bits=w_bits, acc_width=acc_width)
        layout = step_layout(lanes=lanes, a_width=a_width, a_signed=a_signed, w_bits=w_bits)
        super().__init__({
            "i": In(stream.Signature(layout)),
            "o": Out(stream.Signature(signed(acc_width))),
        })

    def elaborate(self, platform):
        m = Module()
        step = self.i.payload
        acc = Signal(signed(self._acc_width))

        products = [step.x[j] * step.w[j] for j in range(self._lanes)]
        lane_sum = Signal(signed(self._acc_width))
        m.d.comb += lane_sum.eq(chained_sum(m, products, self._acc_width))
        acc_next = Signal(signed(self._acc_width))
        m.d.comb += acc_next.eq(Mux(step.first, 0, acc) + lane_sum)

        emit_on_last(m, i=self.i, o=self.o, acc=acc, acc_next=acc_next, last=step.last)
        return m

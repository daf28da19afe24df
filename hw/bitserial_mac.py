"""Bit-serial MAC: the weight operand is processed one bit-plane per cycle, MSB plane first.

Stream in `i`: one step per transfer, payload as `cdsl.hw.mac.step_layout(mask=True)`:
`x` (lanes activations), `w` (lanes two's-complement weights, `w_bits` wide), `mask` (the
row's plane mask: bit b set when some weight of the row has bit b set), `first`, `last`.
The MAC holds each step for one cycle per active plane: in a cycle on plane b it adds
`2**b * sum_j(x_j * bit_b(w_j))`, subtracting on the MSB plane (b = w_bits-1). Active planes
are those set in `mask` among the top p planes, p = `precision` (a port; 0 or anything above
`w_bits` means full precision, so an undriven port computes exactly). Stopping after p planes
is TruncQuant's truncation `(w >> (B-p)) << (B-p)`. A step with no active plane takes one cycle
and adds zero. Stream out `o`: one signed sum per row, LATENCY cycle after its last step.

Arithmetic and cycles are defined by `cdsl.contract.ref.bitserial_mac` (bitserial_dot, row_cycles).
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from cdsl.hw._checks import index_shape
from cdsl.hw.mac import check_mac_params, step_layout
from cdsl.contract.ref.bitserial_mac import LATENCY

__all__ = ["BitSerialMac", "LATENCY"]


class BitSerialMac(wiring.Component):
    """Bit-serial multiply-accumulate with `lanes` lanes (see the module docstring)."""

    def __init__(self, *, lanes: int, a_width: int, a_signed: bool, w_bits: int, acc_width: int):
        self._lanes, self._a_width, self._a_signed, self._w_bits, self._acc_width = check_mac_params(
            lanes=lanes, a_width=a_width, a_signed=a_signed, w_bits=w_bits, acc_width=acc_width)
        layout = step_layout(lanes=lanes, a_width=a_width, a_signed=a_signed, w_bits=w_bits, mask=True)
        super().__init__({
            "i": In(stream.Signature(layout)),
            "precision": In(range(w_bits + 1)),
            "o": Out(stream.Signature(signed(acc_width))),
        })

    def elaborate(self, platform):
        m = Module()
        bits = self._w_bits
        step = self.i.payload
        acc = Signal(signed(self._acc_width))
        done = Signal(bits)  # planes of the current step already processed

        full = (self.precision == 0) | (self.precision > bits)
        precision = Signal(range(bits + 1))
        m.d.comb += precision.eq(Mux(full, bits, self.precision))
        dropped = Signal(range(bits + 1))
        m.d.comb += dropped.eq(bits - precision)
        kept_planes = Signal(bits)
        m.d.comb += kept_planes.eq(Const((1 << bits) - 1, bits) << dropped)

        remaining = Signal(bits)
        m.d.comb += remaining.eq(step.mask & kept_planes & ~done)
        plane = Signal(index_shape(bits))  # the highest remaining plane
        for b in range(bits):
            with m.If(remaining[b]):
                m.d.comb += plane.eq(b)
        plane_bit = Signal(bits)
        m.d.comb += plane_bit.eq(Const(1, bits) << plane)
        any_plane = remaining != 0
        final_plane = (remaining & ~plane_bit) == 0

        lane_bits = [step.w[j].as_unsigned().bit_select(plane, 1) for j in range(self._lanes)]
        plane_sum = Signal(signed(self._acc_width))
        m.d.comb += plane_sum.eq(sum(Mux(lane_bits[j], step.x[j], 0) for j in range(self._lanes)))
        weighted = Signal(signed(self._acc_width))
        m.d.comb += weighted.eq(plane_sum << plane)
        contribution = Signal(signed(self._acc_width))
        msb_plane = plane == bits - 1
        m.d.comb += contribution.eq(Mux(any_plane, Mux(msb_plane, -weighted, weighted), 0))

        row_start = step.first & (done == 0)
        acc_next = Signal(signed(self._acc_width))
        m.d.comb += acc_next.eq(Mux(row_start, 0, acc) + contribution)

        advance = ~self.o.valid | self.o.ready
        fire = self.i.valid & advance
        m.d.comb += self.i.ready.eq(advance & final_plane)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(fire):
            m.d.sync += acc.eq(acc_next)
            m.d.sync += done.eq(Mux(final_plane, 0, done | plane_bit))
            with m.If(final_plane & step.last):
                m.d.sync += [self.o.payload.eq(acc_next), self.o.valid.eq(1)]
        return m

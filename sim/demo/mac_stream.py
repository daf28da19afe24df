"""`MacStream`: a streaming multiply-accumulate, the smoke-test design of the simulation flow.

Input stream `i`: payload `{a: signed(width), b: signed(width)}` (a `lib.data.StructLayout`, so the
harness's flattening of layouts is exercised). Every `k` input words it emits one output word on
stream `o`: `sum(a[j] * b[j] for j in range(k))` as `signed(2*width + ceil(log2(k)))`, wide enough
that no sum of `k` products can wrap. While an output word waits for `o.ready`, `i.ready` is low.

Reference: `mac_stream_ref(pairs, k)` below (plain Python integers).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MacStream", "mac_stream_ref", "mac_layout", "acc_width"]


def mac_layout(width: int) -> data.StructLayout:
    return data.StructLayout({"a": signed(width), "b": signed(width)})


def acc_width(*, k: int, width: int) -> int:
    return 2 * width + max(1, (k - 1).bit_length())


def mac_stream_ref(pairs: list[tuple[int, int]], k: int) -> list[int]:
    """Dot product of every group of `k` consecutive (a, b) pairs."""
    if len(pairs) % k:
        raise ValueError(f"mac_stream_ref: {len(pairs)!r} pairs is not a multiple of k={k!r}")
    return [sum(a * b for a, b in pairs[g:g + k]) for g in range(0, len(pairs), k)]


class MacStream(wiring.Component):
    def __init__(self, *, k: int, width: int = 8):
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"MacStream: k must be a positive integer, not {k!r}")
        if not isinstance(width, int) or isinstance(width, bool) or not 2 <= width <= 32:
            raise ValueError(f"MacStream: width must be an integer in 2..32, not {width!r}")
        self._k = k
        self._width = width
        super().__init__({
            "i": In(stream.Signature(mac_layout(width))),
            "o": Out(stream.Signature(signed(acc_width(k=k, width=width)))),
        })

    def elaborate(self, platform):
        m = Module()
        k = self._k
        acc = Signal(signed(acc_width(k=k, width=self._width)))
        count = Signal(range(k))
        out_valid = Signal()

        product = self.i.payload.a * self.i.payload.b
        in_fire = self.i.valid & self.i.ready
        last = count == k - 1

        m.d.comb += [
            self.i.ready.eq(~out_valid),
            self.o.valid.eq(out_valid),
            self.o.payload.eq(acc),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += out_valid.eq(0)
        with m.If(in_fire):
            with m.If(count == 0):
                m.d.sync += acc.eq(product)
            with m.Else():
                m.d.sync += acc.eq(acc + product)
            with m.If(last):
                m.d.sync += [count.eq(0), out_valid.eq(1)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        return m

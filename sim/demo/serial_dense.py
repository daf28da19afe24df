"""`SerialDense`: a one-MAC-per-cycle dense layer, the design the simulation benchmark runs.

Input stream `i`: `k` signed(`width`) activations per sample; output stream `o`: `n` signed
dot products `sum_j w[r][j] * x[j]` (r = 0..n-1), one MAC per clock, weights in a ROM
(`amaranth.lib.memory.Memory` with `init`). Cycles per sample: `k` to load, then `k + 1` per row
(k MACs, one cycle to hand the row's result over) when the output is always ready.

Reference: `serial_dense_ref(weights, x)`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SerialDense", "serial_dense_ref", "serial_dense_cycles"]


def serial_dense_ref(weights: list[list[int]], x: list[int]) -> list[int]:
    return [sum(w * v for w, v in zip(row, x)) for row in weights]


def serial_dense_cycles(*, k: int, n: int) -> int:
    """Cycles from the harness start to the last output word, output always ready, input ready."""
    return k + n * (k + 1)


class SerialDense(wiring.Component):
    def __init__(self, *, weights: list[list[int]], width: int = 8):
        if not weights or not all(isinstance(row, list) and row for row in weights):
            raise ValueError(f"SerialDense: weights must be a non-empty list of non-empty rows, not {weights!r:.60}")
        k = len(weights[0])
        if any(len(row) != k for row in weights):
            raise ValueError(f"SerialDense: every weight row must have {k!r} entries")
        lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
        if any(not lo <= w <= hi for row in weights for w in row):
            raise ValueError(f"SerialDense: weights must fit signed({width!r})")
        self._weights = [list(row) for row in weights]
        self._k = k
        self._n = len(weights)
        self._width = width
        self._acc_width = 2 * width + max(1, (k - 1).bit_length())
        super().__init__({
            "i": In(stream.Signature(signed(width))),
            "o": Out(stream.Signature(signed(self._acc_width))),
        })

    def elaborate(self, platform):
        m = Module()
        k, n, width = self._k, self._n, self._width
        xmem = memory.Memory(shape=signed(width), depth=k, init=[])
        wrom = memory.Memory(shape=signed(width), depth=k * n, init=[w for row in self._weights for w in row])
        m.submodules.xmem = xmem
        m.submodules.wrom = wrom
        x_wr = xmem.write_port()
        x_rd = xmem.read_port(domain="comb")
        w_rd = wrom.read_port(domain="comb")

        col = Signal(range(k))
        row = Signal(range(n))
        acc = Signal(signed(self._acc_width))
        product = x_rd.data * w_rd.data
        last_col = col == k - 1
        last_row = row == n - 1

        m.d.comb += [
            x_wr.addr.eq(col),
            x_wr.data.eq(self.i.payload),
            x_rd.addr.eq(col),
            w_rd.addr.eq(row * k + col),
            self.o.payload.eq(acc),
        ]
        with m.FSM():
            with m.State("LOAD"):
                m.d.comb += [self.i.ready.eq(1), x_wr.en.eq(self.i.valid)]
                with m.If(self.i.valid):
                    m.d.sync += col.eq(0 if k == 1 else col + 1)
                    with m.If(last_col):
                        m.d.sync += [col.eq(0), row.eq(0), acc.eq(0)]
                        m.next = "MAC"
            with m.State("MAC"):
                m.d.sync += acc.eq(acc + product)
                with m.If(last_col):
                    m.d.sync += col.eq(0)
                    m.next = "EMIT"
                with m.Else():
                    m.d.sync += col.eq(col + 1)
            with m.State("EMIT"):
                m.d.comb += self.o.valid.eq(1)
                with m.If(self.o.ready):
                    m.d.sync += acc.eq(0)
                    with m.If(last_row):
                        m.d.sync += row.eq(0)
                        m.next = "LOAD"
                    with m.Else():
                        m.d.sync += row.eq(row + 1)
                        m.next = "MAC"
        return m

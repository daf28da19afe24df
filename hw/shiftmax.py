"""Shiftmax engine: the integer softmax of `cdsl.contract.ref.int_softmax.shiftmax`, one row at a time.

Stream in `i` (`cdsl.hw.streams.frame_layout`, signed `in_bits`): a row of integer scores, `last` on
its final element; rows may differ in length (1..`max_len`: the number of tokens varies per inference
once a token selector prunes them). Stream out `o` (unsigned, OUT_BITS + 1 bits: 0..2**OUT_BITS): the
row's softmax in the same order, `last` on its final element. Per row, four phases, one after another:

    load    n cycles     store the row, track its maximum
    exp     n cycles     e_k from x_k - max (shifts, 15 constant comparisons for q = floor(x / x0),
                         a barrel shift by N - q); e_k stored, s = sum(e_k) accumulated
    recip   Q cycles     f = floor(2**62 / s), restoring division, one quotient bit per cycle; Q is the
                         width of the largest possible f: s >= e(max) = -x0 * 2**N, so f < 2**62 / (-x0 * 2**N)
    out     n cycles     y_k = (e_k * f) >> (62 - OUT_BITS), one multiplier

Cycles per row with the input always valid and the output always ready: `row_cycles(n)` = 3 n + Q, from
the row's first element taken to its last result taken, inclusive. The next row is taken from the
cycle after the last result (rows do not overlap). A row longer than `max_len` is outside the
contract (the plan sizes `max_len` to the longest row). Reads are combinational (`lib.memory` comb read ports).
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from cdsl.contract.ref.int_softmax import N, OUT_BITS, RECIP_BITS
from cdsl.hw._checks import check_int, index_shape
from cdsl.hw._divide import restoring_step
from cdsl.hw.streams import frame_signature

__all__ = ["Shiftmax", "recip_bits", "row_cycles", "memory_bits"]


def _e_max(x0: int) -> int:
    """The largest e (a score equal to the row's maximum): ((0 - 2 x0) << N) >> 1."""
    return (-x0) << N


def recip_bits(x0: int) -> int:
    """Q: the bits of the largest reciprocal f = floor(2**62 / s) (s >= e_max)."""
    return ((1 << RECIP_BITS) // _e_max(x0)).bit_length()


def memory_bits(*, in_bits: int, x0: int, max_len: int) -> int:
    """Storage of the engine: a row of scores and a row of exponents (`max_len` each)."""
    return max(max_len, 2) * (in_bits + _e_max(x0).bit_length())


def row_cycles(n: int, x0: int) -> int:
    """Cycles of one row of n scores (see the module docstring)."""
    check_int("n", n, lo=1)
    return 3 * n + recip_bits(x0)


class Shiftmax(wiring.Component):
    def __init__(self, *, in_bits: int, x0: int, max_len: int):
        self._in_bits = check_int("in_bits", in_bits, lo=2, hi=40)
        self._x0 = check_int("x0", x0, lo=-(1 << 30), hi=-1)
        self._max_len = check_int("max_len", max_len, lo=1, hi=1 << 16)
        super().__init__({
            "i": In(frame_signature(in_bits, True)),
            "o": Out(frame_signature(OUT_BITS + 1, False)),
        })

    def elaborate(self, platform):
        m = Module()
        x0, n_max = self._x0, self._max_len
        e_bits = _e_max(x0).bit_length()
        q_bits = recip_bits(x0)
        s_bits = (_e_max(x0) * n_max).bit_length()

        m.submodules.xmem = xmem = memory.Memory(shape=signed(self._in_bits), depth=max(n_max, 2), init=[])
        m.submodules.emem = emem = memory.Memory(shape=unsigned(e_bits), depth=max(n_max, 2), init=[])
        x_wr, x_rd = xmem.write_port(), xmem.read_port(domain="comb")
        e_wr, e_rd = emem.write_port(), emem.read_port(domain="comb")

        n = Signal(index_shape(n_max + 1))  # elements of the current row
        k = Signal(index_shape(n_max))  # element index in the exp and out phases
        top = Signal(signed(self._in_bits))  # the row's maximum
        s = Signal(s_bits)
        f = Signal(q_bits)
        rem = Signal(RECIP_BITS + 1)  # the division's remainder (starts at 2**62)
        div = Signal(s_bits + q_bits)  # s << bit, shifted right once per cycle
        bit = Signal(range(q_bits + 1))

        # ---- exp: e_k from the stored score (the reference's steps, in hardware)
        d = Signal(signed(self._in_bits + 1))
        m.d.comb += d.eq(x_rd.data - top)
        d2 = Signal(signed(self._in_bits + 2))
        m.d.comb += d2.eq(d + (d >> 1) - (d >> 4))
        floor_ = N * x0
        dc = Signal(signed(max(self._in_bits + 2, (floor_ - 1).bit_length() + 1)))
        m.d.comb += dc.eq(Mux(d2 < floor_, floor_, d2))
        q = Signal(range(N + 1))
        m.d.comb += q.eq(sum((dc <= j * x0).as_unsigned() for j in range(1, N + 1)))
        qx0 = Array(Const(j * x0, signed(max(2, (N * x0 - 1).bit_length() + 1))) for j in range(N + 1))
        r = Signal(signed(dc.shape().width + 1))
        m.d.comb += r.eq(dc - qx0[q])
        base = Signal(unsigned((-2 * x0).bit_length() + 1))
        m.d.comb += base.eq(r - 2 * x0)  # in (-x0, -2 x0]: positive
        up = Signal(range(N + 1))
        m.d.comb += up.eq(N - q)
        e = Signal(e_bits)
        m.d.comb += e.eq((base << up) >> 1)

        # ---- out: y_k = (e_k * f) >> (62 - OUT_BITS)
        prod = Signal(e_bits + q_bits)
        m.d.comb += prod.eq(e_rd.data * f)

        m.d.comb += [
            x_wr.addr.eq(n), x_wr.data.eq(self.i.payload.data),
            x_rd.addr.eq(k), e_wr.addr.eq(k), e_wr.data.eq(e), e_rd.addr.eq(k),
            self.o.payload.data.eq(prod >> (RECIP_BITS - OUT_BITS)),
            self.o.payload.last.eq(k == n - 1),
        ]
        with m.FSM():
            with m.State("LOAD"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    m.d.comb += x_wr.en.eq(1)
                    m.d.sync += n.eq(n + 1)
                    with m.If((n == 0) | (self.i.payload.data > top)):
                        m.d.sync += top.eq(self.i.payload.data)
                    with m.If(self.i.payload.last):
                        m.d.sync += [k.eq(0), s.eq(0)]
                        m.next = "EXP"
            with m.State("EXP"):
                m.d.comb += e_wr.en.eq(1)
                m.d.sync += [s.eq(s + e), k.eq(k + 1)]
                with m.If(k == n - 1):
                    m.d.sync += [rem.eq(1 << RECIP_BITS), div.eq((s + e) << (q_bits - 1)), bit.eq(q_bits),
                                 f.eq(0), k.eq(0)]
                    m.next = "RECIP"
            with m.State("RECIP"):
                restoring_step(m, rem=rem, div=div, quo=f)
                m.d.sync += bit.eq(bit - 1)
                with m.If(bit == 1):
                    m.next = "OUT"
            with m.State("OUT"):
                m.d.comb += self.o.valid.eq(1)
                with m.If(self.o.ready):
                    m.d.sync += k.eq(k + 1)
                    with m.If(k == n - 1):
                        m.d.sync += [n.eq(0), k.eq(0)]
                        m.next = "LOAD"
        return m

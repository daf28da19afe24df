"""I-LayerNorm engine: `cdsl.contract.ref.int_layernorm.int_layernorm` over each token, in hardware.

Stream in `i` (`cdsl.hw.streams.frame_layout`, signed `in_bits` <= 10): tokens of `dim` codes one
after another (any number of tokens per inference; `last` on the final code of the inference is
carried to the final output). Stream out `o` (`out_bits`, signed or not): each token's
requantize(normalize(x) * gamma + beta). Per token, phases one after another:

    load    D cycles     store the codes, s = sum(x), t = sum(x**2); with the last code
                         v = D t - s**2, which is floor(sum(c**2) / D) exactly (c = D x - s:
                         sum(c**2) = D (D t - s**2), a multiple of D), so no pass over c and no division
    sqrt    QS cycles    std = max(isqrt(v * 2**(2K)), 1), digit by digit (two radicand bits a cycle)
    recip   QF cycles    f = floor(2**R / std), restoring division, one quotient bit per cycle
    wait    1 cycle      (longer only while the previous token's last results wait for `o`)
    out     D cycles     c = D x - s from the stored codes, n = (c f + 2**(sh-1)) >> sh, z = n g + beta,
                         into a `RequantUnit` (2 more cycles)

QS and QF are the widths the largest values need at this `dim` and `in_bits` (`LayerNormTiming`).
Cycles per token, input always valid and output always ready, from its first code taken to its last
result taken: `token_cycles` = 2 D + QS + QF + 1 + 2. The next token is taken from the cycle after
the out phase ends (the requantizer's last two results drain meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from cdsl.contract.ref.int_layernorm import FRAC_BITS, MAX_DIM, RECIP_BITS, SQRT_BITS
from cdsl.hw._checks import check_bool, check_int, const_table, index_shape
from cdsl.hw._divide import restoring_step
from cdsl.hw.requant_unit import LATENCY as RQ_LATENCY, RequantUnit
from cdsl.hw.streams import frame_signature

__all__ = ["LayerNorm", "LayerNormTiming"]


@dataclass(frozen=True)
class LayerNormTiming:
    """Widths and cycles of the engine for rows of `dim` codes of `in_bits` bits (|x| < 2**(in_bits-1))."""

    dim: int
    in_bits: int

    @property
    def c_max(self) -> int:  # |c| = |D x - s| <= D * (2 * max|x|)
        return self.dim * 2 * (1 << (self.in_bits - 1))

    @property
    def q_max(self) -> int:  # sum of c**2
        return self.dim * self.c_max ** 2

    @property
    def v_bits(self) -> int:  # the width of the largest v = q // D
        return (self.q_max // self.dim).bit_length()

    @property
    def radicand_bits(self) -> int:
        return ((self.q_max // self.dim) << (2 * SQRT_BITS)).bit_length()

    @property
    def sqrt_steps(self) -> int:  # QS: two radicand bits per step
        return (self.radicand_bits + 1) // 2

    @property
    def recip_bits(self) -> int:  # QF: f = 2**R // std, std >= 1
        return RECIP_BITS + 1

    @property
    def memory_bits(self) -> int:  # the engine's storage: one token's codes
        return max(self.dim, 2) * self.in_bits

    def token_cycles(self) -> int:
        return 2 * self.dim + self.sqrt_steps + self.recip_bits + 1 + RQ_LATENCY


class LayerNorm(wiring.Component):
    """gamma, beta: one int per feature; (multiplier, shift, qmin, qmax): the per-tensor requantization."""

    def __init__(self, *, dim: int, in_bits: int, gamma, beta, multiplier: int, shift: int,
                 qmin: int, qmax: int, out_bits: int, out_signed: bool):
        self._dim = check_int("dim", dim, lo=1, hi=MAX_DIM)
        self._in_bits = check_int("in_bits", in_bits, lo=2, hi=10)
        self._gamma = tuple(int(v) for v in gamma)
        self._beta = tuple(int(v) for v in beta)
        if len(self._gamma) != dim or len(self._beta) != dim:
            raise ValueError(f"gamma and beta need {dim} entries each, got {len(self._gamma)} and {len(self._beta)}")
        for g in self._gamma:
            check_int("gamma", g, lo=-(1 << 15), hi=(1 << 15) - 1)
        for b in self._beta:
            check_int("beta", b, lo=-(1 << 31), hi=(1 << 31) - 1)
        self._rq = dict(multipliers=(int(multiplier),), shifts=(int(shift),), qmin=qmin, qmax=qmax,
                        out_bits=check_int("out_bits", out_bits, lo=1, hi=32), out_signed=check_bool("out_signed", out_signed))
        self.timing = LayerNormTiming(dim, in_bits)
        super().__init__({
            "i": In(frame_signature(in_bits, True)),
            "o": Out(frame_signature(out_bits, out_signed)),
        })

    def elaborate(self, platform):
        m = Module()
        t, d_n = self.timing, self._dim
        c_bits = t.c_max.bit_length() + 1
        sh = RECIP_BITS - FRAC_BITS - SQRT_BITS
        n_max = (t.c_max * (1 << RECIP_BITS) + (1 << (sh - 1))) >> sh
        n_bits = n_max.bit_length() + 1
        z_max = n_max * (1 << 15) + (1 << 31)
        z_bits = z_max.bit_length() + 1

        m.submodules.xmem = xmem = memory.Memory(shape=signed(self._in_bits), depth=max(d_n, 2), init=[])
        x_wr, x_rd = xmem.write_port(), xmem.read_port(domain="comb")
        m.submodules.rq = rq = RequantUnit(acc_width=z_bits, channels=1, **self._rq)

        k = Signal(index_shape(d_n))
        last_k = k == d_n - 1
        s = Signal(signed((d_n * (1 << (self._in_bits - 1))).bit_length() + 1))
        sq = Signal((d_n * (1 << (2 * self._in_bits - 2))).bit_length())  # sum of x**2
        row_last = Signal()  # the token held ends the inference
        # the square root and the reciprocal share one remainder register
        rem = Signal(max(RECIP_BITS + 1, t.radicand_bits) + 1)
        dv = Signal(t.sqrt_steps + 1 + t.recip_bits + 1)
        quo = Signal(2 * t.sqrt_steps + 1)  # the root's partial result spans the radicand's width
        steps = Signal(range(max(t.sqrt_steps, t.recip_bits) + 1))
        sq_bit = Signal(2 * t.sqrt_steps)
        f = Signal(t.recip_bits)

        # the sums with the code on `i`, and v = D sum(x**2) - s**2 = floor(sum(c**2) / D) (>= 0)
        x_in = self.i.payload.data
        s_next = Signal.like(s)
        sq_next = Signal.like(sq)
        v = Signal(t.v_bits)
        m.d.comb += [s_next.eq(Mux(k == 0, 0, s) + x_in), sq_next.eq(Mux(k == 0, 0, sq) + x_in * x_in),
                     v.eq(d_n * sq_next - s_next * s_next)]

        c = Signal(signed(c_bits))
        m.d.comb += c.eq(d_n * x_rd.data - s)
        n = Signal(signed(n_bits))
        m.d.comb += n.eq((c * f + (1 << (sh - 1))) >> sh)
        gamma = const_table(self._gamma, signed(16), k)
        beta = const_table(self._beta, signed(32), k)

        pending = Signal(range(d_n + 3))  # results pushed into the requantizer, not yet taken from `o`
        out_k = Signal(index_shape(d_n))
        out_last = Signal()
        push = rq.i.valid & rq.i.ready
        take = self.o.valid & self.o.ready
        m.d.sync += pending.eq(pending + push - take)
        m.d.comb += [
            x_wr.addr.eq(k), x_wr.data.eq(self.i.payload.data), x_rd.addr.eq(k),
            rq.i.payload.acc.eq(n * gamma + beta), rq.i.payload.ch.eq(0),
            self.o.valid.eq(rq.o.valid), rq.o.ready.eq(self.o.ready),
            self.o.payload.data.eq(rq.o.payload),
            self.o.payload.last.eq(out_last & (out_k == d_n - 1)),
        ]
        with m.If(take):
            m.d.sync += out_k.eq(Mux(out_k == d_n - 1, 0, out_k + 1))

        with m.FSM():
            with m.State("LOAD"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    m.d.comb += x_wr.en.eq(1)
                    m.d.sync += [s.eq(s_next), sq.eq(sq_next), k.eq(k + 1)]
                    with m.If(last_k):
                        m.d.sync += [k.eq(0), row_last.eq(self.i.payload.last), rem.eq(v << (2 * SQRT_BITS)),
                                     quo.eq(0), sq_bit.eq(1 << (2 * (t.sqrt_steps - 1))), steps.eq(t.sqrt_steps)]
                        m.next = "SQRT"
            with m.State("SQRT"):  # quo = isqrt(v << 2K), digit by digit
                trial = quo + sq_bit
                fits = rem >= trial
                m.d.sync += [sq_bit.eq(sq_bit >> 2), steps.eq(steps - 1)]
                with m.If(fits):
                    m.d.sync += [rem.eq(rem - trial), quo.eq((quo >> 1) + sq_bit)]
                with m.Else():
                    m.d.sync += quo.eq(quo >> 1)
                with m.If(steps == 1):
                    root = Mux(fits, (quo >> 1) + sq_bit, quo >> 1)
                    m.d.sync += [rem.eq(1 << RECIP_BITS), dv.eq(Mux(root == 0, 1, root) << (t.recip_bits - 1)),
                                 f.eq(0), steps.eq(t.recip_bits)]
                    m.next = "RECIP"
            with m.State("RECIP"):  # f = 2**R // std
                restoring_step(m, rem=rem, div=dv, quo=f)
                m.d.sync += steps.eq(steps - 1)
                with m.If(steps == 1):
                    m.next = "WAIT"
            with m.State("WAIT"):  # the previous token's results have left the requantizer
                with m.If(pending == 0):
                    m.d.sync += out_last.eq(row_last)
                    m.next = "OUT"
            with m.State("OUT"):
                m.d.comb += rq.i.valid.eq(1)
                with m.If(rq.i.ready):
                    m.d.sync += k.eq(k + 1)
                    with m.If(last_k):
                        m.d.sync += k.eq(0)
                        m.next = "LOAD"
        return m

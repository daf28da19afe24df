"""Attention engine: the encoder's scores Q·Kᵀ, Shiftmax and A·V on activations, head by head.

The integer semantics are the encoder reference's (`cdsl.contract.ref.encoder.block`):

    p = shiftmax(q_h @ k_h.T, x0)   per head h (`cdsl.hw.shiftmax.Shiftmax` as a submodule)
    o = requantize(p @ v_h, attn)   heads concatenated; per channel or per tensor (`RequantUnit`)

Stream in `i` (`cdsl.hw.streams.frame_layout`, signed `in_bits`): the QKV projection's output, token
by token, each token's q row, k row and v row (3 D words), n tokens, `last` on the final word; n may
be anything from 1 to `max_tokens` and may change from one inference to the next (a token selector
upstream). Stream out `o`: the n x D result token by token, `last` on its final word.

Phases: load (3 n D cycles: q, k and v into three memories); then for each token i and head h:
score (for each key j, hd products one per cycle; each score goes to the Shiftmax as it is formed:
n hd cycles), the Shiftmax's exponent, reciprocal and output phases (n + Q + n cycles; the
probabilities are stored as they come), and A·V (for each of the head's hd features, n products one
per cycle, the sum into the requantizer: hd n cycles). Cycles per inference with the input always
valid and the output always ready, from the first word taken to the last result taken (a one-cycle
wait before scoring only while the previous inference's last results are still held):
`AttentionTiming.cycles(n)` = 3 n D + n H (2 n hd + 2 n + Q) + 2. One multiplier does every product.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from cdsl.contract.ref.int_softmax import OUT_BITS
from cdsl.hw._checks import check_bool, check_int, index_shape
from cdsl.hw.requant_unit import LATENCY as RQ_LATENCY, RequantUnit
from cdsl.hw.shiftmax import Shiftmax, recip_bits
from cdsl.hw.streams import frame_signature

__all__ = ["Attention", "AttentionTiming", "score_bits", "av_bits", "memory_bits"]


def score_bits(in_bits: int, dim: int, heads: int) -> int:
    """Width of a score q_h . k_h: hd = dim / heads products of two signed codes."""
    return 2 * in_bits + max(1, (dim // heads - 1).bit_length()) + 1


def av_bits(in_bits: int, max_tokens: int) -> int:
    """Width of p . v_h: at most max_tokens products of a probability (0..2**OUT_BITS) and a code."""
    return in_bits + OUT_BITS + 2 + max(1, (max_tokens - 1).bit_length()) + 1


def memory_bits(*, dim: int, heads: int, max_tokens: int, in_bits: int, x0: int) -> int:
    """Storage of the engine: q, k and v of max_tokens tokens, a row of probabilities, the Shiftmax's row."""
    from cdsl.hw.shiftmax import memory_bits as softmax_bits

    return (3 * max_tokens * dim * in_bits + max(max_tokens, 2) * (OUT_BITS + 1)
            + softmax_bits(in_bits=score_bits(in_bits, dim, heads), x0=x0, max_len=max_tokens))


@dataclass(frozen=True)
class AttentionTiming:
    dim: int
    heads: int
    x0: int

    def cycles(self, n: int) -> int:
        """Cycles of one inference of n tokens (see the module docstring)."""
        check_int("n", n, lo=1)
        hd = self.dim // self.heads
        return 3 * n * self.dim + n * self.heads * (2 * n * hd + 2 * n + recip_bits(self.x0)) + RQ_LATENCY


class Attention(wiring.Component):
    """multipliers, shifts: the `attn` requantization, one per channel (D) or one for all."""

    def __init__(self, *, dim: int, heads: int, max_tokens: int, in_bits: int, x0: int, multipliers, shifts,
                 qmin: int, qmax: int, out_bits: int, out_signed: bool):
        self._dim = check_int("dim", dim, lo=1, hi=4096)
        self._heads = check_int("heads", heads, lo=1, hi=dim)
        if dim % heads:
            raise ValueError(f"heads must divide dim: {heads} does not divide {dim}")
        self._n_max = check_int("max_tokens", max_tokens, lo=1, hi=4096)
        self._in_bits = check_int("in_bits", in_bits, lo=2, hi=16)
        self._x0 = x0
        self._mult = tuple(int(v) for v in multipliers)
        self._shift = tuple(int(v) for v in shifts)
        if len(self._mult) not in (1, dim) or len(self._shift) != len(self._mult):
            raise ValueError(f"multipliers/shifts need 1 or {dim} entries each")
        self._rq = dict(qmin=qmin, qmax=qmax, out_bits=check_int("out_bits", out_bits, lo=1, hi=32),
                        out_signed=check_bool("out_signed", out_signed))
        self.timing = AttentionTiming(dim, heads, x0)
        super().__init__({
            "i": In(frame_signature(in_bits, True)),
            "o": Out(frame_signature(out_bits, out_signed)),
        })

    @property
    def memory_bits(self) -> int:
        return memory_bits(dim=self._dim, heads=self._heads, max_tokens=self._n_max, in_bits=self._in_bits,
                           x0=self._x0)

    def elaborate(self, platform):
        m = Module()
        d_n, h_n, n_max, bits = self._dim, self._heads, self._n_max, self._in_bits
        hd = d_n // h_n
        score_w, av_w = score_bits(bits, d_n, h_n), av_bits(bits, n_max)

        mems = {}
        for name in ("q", "k", "v"):
            mems[name] = m.submodules[f"{name}mem"] = memory.Memory(shape=signed(bits), depth=n_max * d_n, init=[])
        m.submodules.pmem = pmem = memory.Memory(shape=unsigned(OUT_BITS + 1), depth=max(n_max, 2), init=[])
        wr = {name: mem.write_port() for name, mem in mems.items()}
        rd = {name: mem.read_port(domain="comb") for name, mem in mems.items()}
        p_wr, p_rd = pmem.write_port(), pmem.read_port(domain="comb")
        m.submodules.softmax = sm = Shiftmax(in_bits=score_w, x0=self._x0, max_len=n_max)
        per_channel = len(self._mult) > 1
        m.submodules.rq = rq = RequantUnit(acc_width=av_w, channels=d_n if per_channel else 1,
                                           multipliers=self._mult, shifts=self._shift, **self._rq)

        n = Signal(range(n_max + 1))  # tokens of this inference
        tok = Signal(range(n_max))  # the token being loaded / the query token
        col = Signal(range(3 * d_n))  # word within a loaded token (q row, k row, v row)
        head = Signal(range(h_n))
        j = Signal(range(n_max))  # key / value token
        f = Signal(range(hd))  # feature within the head
        acc = Signal(signed(max(score_w, av_w)))

        # ---- load: word `col` of token `tok` goes to q, k or v at tok * D + (col mod D)
        which = Signal(range(3))
        feat = Signal(range(d_n))
        m.d.comb += [which.eq(Mux(col >= 2 * d_n, 2, Mux(col >= d_n, 1, 0))),
                     feat.eq(col - which * d_n)]
        for idx, name in enumerate(("q", "k", "v")):
            m.d.comb += [wr[name].addr.eq(tok * d_n + feat), wr[name].data.eq(self.i.payload.data)]

        # ---- score and A·V reads
        base = Signal(range(d_n))
        m.d.comb += base.eq(head * hd)
        m.d.comb += [
            rd["q"].addr.eq(tok * d_n + base + f),
            rd["k"].addr.eq(j * d_n + base + f),
            rd["v"].addr.eq(j * d_n + base + f),
            p_rd.addr.eq(j), p_wr.addr.eq(j), p_wr.data.eq(sm.o.payload.data),
        ]
        qk = Signal(signed(2 * bits))
        m.d.comb += qk.eq(rd["q"].data * rd["k"].data)
        pv = Signal(signed(bits + OUT_BITS + 2))
        m.d.comb += pv.eq(p_rd.data * rd["v"].data)

        score = Signal(signed(score_w))
        m.d.comb += [score.eq(acc + qk), sm.i.payload.data.eq(score), sm.i.payload.last.eq(j == n - 1)]
        av = Signal(signed(av_w))
        m.d.comb += [av.eq(acc + pv), rq.i.payload.acc.eq(av),
                     rq.i.payload.ch.eq(base + f if per_channel else 0)]

        # ---- output `last`: the final result of the inference (counted on the output side)
        # (its own token count: the next inference may load while the requantizer still holds results)
        out_n = Signal(range(n_max + 1))
        out_tok = Signal(range(n_max))
        out_col = Signal(range(d_n))
        take = self.o.valid & self.o.ready
        pending = Signal(range(4))  # results in the requantizer, not yet taken
        m.d.sync += pending.eq(pending + (rq.i.valid & rq.i.ready) - take)
        m.d.comb += [self.o.valid.eq(rq.o.valid), rq.o.ready.eq(self.o.ready), self.o.payload.data.eq(rq.o.payload),
                     self.o.payload.last.eq((out_tok == out_n - 1) & (out_col == d_n - 1))]
        with m.If(take):
            m.d.sync += out_col.eq(Mux(out_col == d_n - 1, 0, out_col + 1))
            with m.If(out_col == d_n - 1):
                m.d.sync += out_tok.eq(Mux(out_tok == out_n - 1, 0, out_tok + 1))

        last_f = f == hd - 1
        last_j = j == n - 1
        with m.FSM():
            with m.State("LOAD"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    for idx, name in enumerate(("q", "k", "v")):
                        m.d.comb += wr[name].en.eq(which == idx)
                    m.d.sync += col.eq(Mux(col == 3 * d_n - 1, 0, col + 1))
                    with m.If(col == 3 * d_n - 1):
                        m.d.sync += tok.eq(tok + 1)
                    with m.If(self.i.payload.last):
                        m.d.sync += [n.eq(tok + 1), tok.eq(0), col.eq(0), head.eq(0), j.eq(0), f.eq(0),
                                     acc.eq(0)]
                        with m.If(pending == 0):
                            m.d.sync += out_n.eq(tok + 1)
                            m.next = "SCORE"
                        with m.Else():
                            m.next = "WAIT"
            with m.State("WAIT"):  # only while the previous inference's last results wait for `o`
                with m.If(pending == 0):
                    m.d.sync += out_n.eq(n)
                    m.next = "SCORE"
            with m.State("SCORE"):  # acc over the head's features of q[tok] . k[j]
                m.d.sync += [acc.eq(score), f.eq(f + 1)]
                with m.If(last_f):
                    m.d.comb += sm.i.valid.eq(1)  # the Shiftmax is loading: always ready here
                    m.d.sync += [acc.eq(0), f.eq(0), j.eq(j + 1)]
                    with m.If(last_j):
                        m.d.sync += j.eq(0)
                        m.next = "PROBS"
            with m.State("PROBS"):  # the Shiftmax's results, stored as they come
                m.d.comb += [sm.o.ready.eq(1), p_wr.en.eq(sm.o.valid)]
                with m.If(sm.o.valid):
                    m.d.sync += j.eq(j + 1)
                    with m.If(sm.o.payload.last):
                        m.d.sync += j.eq(0)
                        m.next = "AV"
            with m.State("AV"):  # acc over the keys of p[j] * v[j][feature]
                with m.If(last_j):
                    m.d.comb += rq.i.valid.eq(1)
                    with m.If(rq.i.ready):
                        m.d.sync += [acc.eq(0), j.eq(0), f.eq(f + 1)]
                        with m.If(last_f):
                            m.d.sync += f.eq(0)
                            with m.If(head == h_n - 1):
                                m.d.sync += head.eq(0)
                                with m.If(tok == n - 1):
                                    m.d.sync += tok.eq(0)
                                    m.next = "LOAD"
                                with m.Else():
                                    m.d.sync += tok.eq(tok + 1)
                                    m.next = "SCORE"
                            with m.Else():
                                m.d.sync += head.eq(head + 1)
                                m.next = "SCORE"
                with m.Else():
                    m.d.sync += [acc.eq(av), j.eq(j + 1)]
        return m

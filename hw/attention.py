"""Attention engine: the encoder's scores Q·Kᵀ, Shiftmax and A·V on activations, head by head.

The integer semantics are the encoder reference's (`cdsl.contract.ref.encoder.block`):

    p = shiftmax(q_h @ k_h.T, x0)   per head h (`cdsl.hw.shiftmax.Shiftmax` as a submodule)
    o = requantize(p @ v_h, attn)   heads concatenated; per channel or per tensor (`RequantUnit`)

Stream in `i` (`cdsl.hw.streams.frame_layout`, signed `in_bits`): the QKV projection's output, token
by token, each token's q row, k row and v row (3 D words), n tokens, `last` on the final word; n may
be anything from 1 to `max_tokens` and may change from one inference to the next (a token selector
upstream). Stream out `o`: the n x D result token by token, `last` on its final word.

`lanes` L (a divisor of hd) multipliers work side by side on L features of a head; G = hd / L.
q, k and v are stored L codes to a memory word (written one lane at a time while loading).
Phases: load (3 n D cycles: q, k and v into three memories); then for each token i and head h:
score (for each key j, G steps of L products; each score goes to the Shiftmax as it is formed: n G
cycles), the Shiftmax's exponent, reciprocal and output phases (n + Q + n cycles; the probabilities
are stored as they come), and A·V (for each group of L features, n steps of L products p[j] v[j][f]
into L accumulators; the first sum goes into the requantizer in the last step, the other L - 1 in the
L - 1 cycles after: G (n + L - 1) cycles). Cycles per inference with the input always valid and the
output always ready, from the first word taken to the last result taken (a one-cycle wait before
scoring only while the previous inference's last results are still held):
`AttentionTiming.cycles(n)` = 3 n D + n H (n G + 2 n + Q + G (n + L - 1)) + 2; with one lane,
3 n D + n H (2 n hd + 2 n + Q) + 2.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from cdsl.contract.ref.int_softmax import OUT_BITS
from cdsl.hw._checks import check_bool, check_int
from cdsl.hw._reduce import chained_sum
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
    lanes: int = 1

    def cycles(self, n: int) -> int:
        """Cycles of one inference of n tokens (see the module docstring)."""
        check_int("n", n, lo=1)
        hd = self.dim // self.heads
        g, lanes = hd // self.lanes, self.lanes
        return (3 * n * self.dim + n * self.heads * (n * g + 2 * n + recip_bits(self.x0) + g * (n + lanes - 1))
                + RQ_LATENCY)


class Attention(wiring.Component):
    """multipliers, shifts: the `attn` requantization, one per channel (D) or one for all;
    lanes: multipliers side by side, a divisor of dim / heads."""

    def __init__(self, *, dim: int, heads: int, max_tokens: int, in_bits: int, x0: int, multipliers, shifts,
                 qmin: int, qmax: int, out_bits: int, out_signed: bool, lanes: int = 1):
        self._dim = check_int("dim", dim, lo=1, hi=4096)
        self._heads = check_int("heads", heads, lo=1, hi=dim)
        if dim % heads:
            raise ValueError(f"heads must divide dim: {heads} does not divide {dim}")
        self._lanes = check_int("lanes", lanes, lo=1, hi=dim // heads)
        if (dim // heads) % lanes:
            raise ValueError(f"lanes must divide the head's {dim // heads} features, not {lanes!r}")
        self._n_max = check_int("max_tokens", max_tokens, lo=1, hi=4096)
        self._in_bits = check_int("in_bits", in_bits, lo=2, hi=16)
        self._x0 = x0
        self._mult = tuple(int(v) for v in multipliers)
        self._shift = tuple(int(v) for v in shifts)
        if len(self._mult) not in (1, dim) or len(self._shift) != len(self._mult):
            raise ValueError(f"multipliers/shifts need 1 or {dim} entries each")
        self._rq = dict(qmin=qmin, qmax=qmax, out_bits=check_int("out_bits", out_bits, lo=1, hi=32),
                        out_signed=check_bool("out_signed", out_signed))
        self.timing = AttentionTiming(dim, heads, x0, lanes)
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
        d_n, h_n, n_max, bits, lanes = self._dim, self._heads, self._n_max, self._in_bits, self._lanes
        hd = d_n // h_n
        groups = hd // lanes  # G: memory words of a head's features
        row_words = d_n // lanes  # W: memory words of a token's q (k, v) row
        score_w, av_w = score_bits(bits, d_n, h_n), av_bits(bits, n_max)
        word = data.ArrayLayout(signed(bits), lanes)

        mems = {}
        for name in ("q", "k", "v"):
            mems[name] = m.submodules[f"{name}mem"] = memory.Memory(shape=word, depth=max(n_max * row_words, 2),
                                                                     init=[])
        m.submodules.pmem = pmem = memory.Memory(shape=unsigned(OUT_BITS + 1), depth=max(n_max, 2), init=[])
        wr = {name: mem.write_port(granularity=1) for name, mem in mems.items()}  # one lane (array element)
        rd = {name: mem.read_port(domain="comb") for name, mem in mems.items()}
        p_wr, p_rd = pmem.write_port(), pmem.read_port(domain="comb")
        m.submodules.softmax = sm = Shiftmax(in_bits=score_w, x0=self._x0, max_len=n_max)
        per_channel = len(self._mult) > 1
        m.submodules.rq = rq = RequantUnit(acc_width=av_w, channels=d_n if per_channel else 1,
                                           multipliers=self._mult, shifts=self._shift, **self._rq)

        n = Signal(range(n_max + 1))  # tokens of this inference
        tok = Signal(range(n_max))  # the token being loaded / the query token
        head = Signal(range(h_n))
        j = Signal(range(n_max))  # key / value token
        g = Signal(range(groups))  # group of `lanes` features within the head
        sacc = Signal(signed(score_w))  # the score being formed
        aacc = Array(Signal(signed(av_w), name=f"aacc{k}") for k in range(lanes))  # A·V, one per lane
        held = Array(Signal(signed(av_w), name=f"held{k}") for k in range(lanes))  # sums waiting for the requantizer
        drain = Signal(range(max(lanes, 2)))  # the lane being sent in DRAIN

        # ---- load: word k of a token's q (k, v) row goes to lane k mod L of memory word k div L
        which = Signal(range(3))
        wcol = Signal(range(row_words))
        lane = Signal(range(max(lanes, 2)))
        for name in ("q", "k", "v"):
            m.d.comb += [wr[name].addr.eq(tok * row_words + wcol),
                         wr[name].data.eq(Cat(*([self.i.payload.data] * lanes)))]  # the enable picks the lane

        # ---- score and A·V reads (k and v of key j at the same word)
        hw_base = Signal(range(max(d_n, 2)))  # the word of the head's group: head * G + g
        m.d.comb += hw_base.eq(head * groups + g)
        m.d.comb += [
            rd["q"].addr.eq(tok * row_words + hw_base),
            rd["k"].addr.eq(j * row_words + hw_base),
            rd["v"].addr.eq(j * row_words + hw_base),
            p_rd.addr.eq(j), p_wr.addr.eq(j), p_wr.data.eq(sm.o.payload.data),
        ]
        qk = Signal(signed(score_w))
        m.d.comb += qk.eq(chained_sum(m, [rd["q"].data[k] * rd["k"].data[k] for k in range(lanes)], score_w, name="qk"))
        av = [Signal(signed(av_w), name=f"av{k}") for k in range(lanes)]
        for k in range(lanes):
            m.d.comb += av[k].eq(aacc[k] + p_rd.data * rd["v"].data[k])

        score = Signal(signed(score_w))
        m.d.comb += [score.eq(sacc + qk), sm.i.payload.data.eq(score), sm.i.payload.last.eq(j == n - 1)]
        feature = Signal(range(max(d_n, 2)))  # the output channel of the lane being sent
        m.d.comb += feature.eq(head * hd + g * lanes + drain)
        m.d.comb += rq.i.payload.ch.eq(feature if per_channel else 0)

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

        last_g = g == groups - 1
        last_j = j == n - 1

        def next_group():
            """After a group's last result: the next group, head, token, or the next inference."""
            m.d.sync += [j.eq(0), g.eq(g + 1)]
            for k in range(lanes):
                m.d.sync += aacc[k].eq(0)
            with m.If(last_g):
                m.d.sync += g.eq(0)
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
                m.next = "AV"

        with m.FSM():
            with m.State("LOAD"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    for idx, name in enumerate(("q", "k", "v")):
                        m.d.comb += wr[name].en.eq(Mux(which == idx, 1 << lane, 0))
                    m.d.sync += lane.eq(lane + 1)
                    with m.If(lane == lanes - 1):
                        m.d.sync += [lane.eq(0), wcol.eq(wcol + 1)]
                        with m.If(wcol == row_words - 1):
                            m.d.sync += [wcol.eq(0), which.eq(which + 1)]
                            with m.If(which == 2):
                                m.d.sync += [which.eq(0), tok.eq(tok + 1)]
                    with m.If(self.i.payload.last):
                        m.d.sync += [n.eq(tok + 1), tok.eq(0), lane.eq(0), wcol.eq(0), which.eq(0), head.eq(0),
                                     j.eq(0), g.eq(0), sacc.eq(0), drain.eq(0)]
                        m.d.sync += [a.eq(0) for a in aacc]
                        with m.If(pending == 0):
                            m.d.sync += out_n.eq(tok + 1)
                            m.next = "SCORE"
                        with m.Else():
                            m.next = "WAIT"
            with m.State("WAIT"):  # only while the previous inference's last results wait for `o`
                with m.If(pending == 0):
                    m.d.sync += out_n.eq(n)
                    m.next = "SCORE"
            with m.State("SCORE"):  # sacc over the head's groups of q[tok] . k[j]
                m.d.sync += [sacc.eq(score), g.eq(g + 1)]
                with m.If(last_g):
                    m.d.comb += sm.i.valid.eq(1)  # the Shiftmax is loading: always ready here
                    m.d.sync += [sacc.eq(0), g.eq(0), j.eq(j + 1)]
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
            with m.State("AV"):  # each lane's acc over the keys of p[j] * v[j][feature]
                with m.If(last_j):
                    m.d.comb += [rq.i.valid.eq(1), rq.i.payload.acc.eq(av[0])]
                    with m.If(rq.i.ready):
                        if lanes > 1:
                            m.d.sync += [held[k].eq(av[k]) for k in range(1, lanes)]
                            m.d.sync += drain.eq(1)
                            m.next = "DRAIN"
                        else:
                            next_group()
                with m.Else():
                    m.d.sync += [aacc[k].eq(av[k]) for k in range(lanes)]
                    m.d.sync += j.eq(j + 1)
            if lanes > 1:
                with m.State("DRAIN"):  # the group's other sums, one a cycle
                    m.d.comb += [rq.i.valid.eq(1), rq.i.payload.acc.eq(held[drain])]
                    with m.If(rq.i.ready):
                        m.d.sync += drain.eq(drain + 1)
                        with m.If(drain == lanes - 1):
                            m.d.sync += drain.eq(0)
                            next_group()
        return m


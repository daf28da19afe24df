"""Token selector engine: HeatViT-style token pruning of one token stream, bit-exact with
`cdsl.contract.ref.token_selector` (the arithmetic is defined there; this file only schedules it).

Ports (frame streams, `cdsl.hw.streams`):
- `i`: n tokens of D features, one feature per transfer, token-major (the class token first), `last`
  on the final word: n (2..N) is read from `last` at run time, so the selector can follow an earlier
  selector whose output was shortened (a frame of N tokens ends after N*D words even without `last`);
- `o`: the kept tokens in their original order, then the package token when a token was pruned:
  count + (count < n) tokens of D words, `last` on the final word (the length varies per inference);
- `count` (only with `count=True`, the block tests' engine): one word per inference, the kept count
  (class token included), sent before the tokens; the network's engine (`TokenSelectorNode.component`)
  has no such port (its readers find the end of the frame from `last`);
- `threshold`: the keep threshold (0..257, a runtime setting; the payload's value is its default),
  read while the scores are compared (hold it steady during an inference).

Schedule (one multiplier, one accumulator; every memory is read combinationally, so a product
needs one cycle; `TokenSelectorNode` in `cdsl.hw.kinds.token_selector` holds the cycle model):
`load` stores the tokens; `local` computes every candidate's local features (requantize on the
extra cycle of each dot product) and sums them per feature; `global` divides the sums into the
global feature; `score` runs the scoring MLP per candidate and head (hidden units, then the logit,
the PLAN sigmoid and the weighted head sum) and stores the fused score; `count` sends the kept
count (one cycle without the port); `pad` waits D cycles when nothing was pruned, standing in for the
package phase, so that the timing depends on n only, never on the data; `output` walks the stored tokens once, sending a kept token's words and folding a pruned
token's words into the package sums (score-weighted and plain); `package` divides those sums, one
feature at a time, by a restoring division (one quotient bit per cycle, `package_quotient_bits`
of them: the quotient is a weighted mean of the tokens, so it fits their width). `global`'s
divisions (by the candidate count) are combinational. Both take the reference's round-half-up
form floor((2a + b) / (2b)).
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from cdsl.contract.intmodel import Requant
from cdsl.contract.ref.int_sigmoid import ONE
from cdsl.contract.ref.requant import MULT_BITS
from cdsl.contract.ref.token_selector import HEAD_WEIGHT_BITS, MAX_THRESHOLD
from cdsl.hw._checks import const_table, index_shape
from cdsl.hw._divide import restoring_step
from cdsl.hw.kinds.token_selector import TokenSelectorNode
from cdsl.hw.streams import frame_signature


def sigmoid(z, frac_bits: int):
    """The PLAN integer sigmoid of `cdsl.contract.ref.int_sigmoid`, combinational: z signed -> 0..256."""
    a = Mux(z < 0, -z, z)
    half = (1 << frac_bits) >> 1

    def seg(slope: int, intercept: int):
        return intercept + ((a * slope + half) >> frac_bits)

    pos = Mux(a >= (5 << frac_bits), ONE,
              Mux(a * 8 >= (19 << frac_bits), seg(8, 216),
                  Mux(a * 8 >= (8 << frac_bits), seg(32, 160), seg(64, 128))))
    return Mux(z < 0, ONE - pos, pos)


def requantize(m: Module, acc, rq: Requant, head, *, name: str):
    """clamp((acc * M[head] + 2**(S-1)) >> S[head], qmin, qmax), combinational (the requant contract)."""
    mults = [int(v) for v in rq.multiplier]
    shifts = [int(v) for v in rq.shift]
    rounding = [(1 << (s - 1)) if s > 0 else 0 for s in shifts]
    max_shift = max(shifts)

    def table(values, shape):
        return Const(values[0], shape) if len(values) == 1 else const_table(values, shape, head)

    prod = Signal(signed(len(acc) + MULT_BITS + 2), name=f"{name}_prod")
    m.d.comb += prod.eq(acc * table(mults, unsigned(MULT_BITS)) + table(rounding, unsigned(max(max_shift, 1))))
    shifted = Signal(signed(len(prod)), name=f"{name}_shifted")
    m.d.comb += shifted.eq(prod >> table(shifts, index_shape(max_shift + 1)))
    return Mux(shifted < rq.qmin, rq.qmin, Mux(shifted > rq.qmax, rq.qmax, shifted))


class TokenSelectorEngine(wiring.Component):
    def __init__(self, *, node: TokenSelectorNode, count: bool = False):
        if not isinstance(node, TokenSelectorNode):
            raise TypeError(f"node must be a TokenSelectorNode, not {node!r}")
        if not isinstance(count, bool):
            raise TypeError(f"count must be a bool, not {count!r}")
        self._node = node
        self._count_port = count
        t = node.in_types[0]
        ports = {"i": In(frame_signature(t.bits, t.signed)), "o": Out(frame_signature(t.bits, t.signed))}
        if count:
            ports["count"] = Out(frame_signature(node.tokens.bit_length(), False))
        ports["threshold"] = In(range(MAX_THRESHOLD + 1), init=node.selector.threshold)
        super().__init__(ports)

    @property
    def node(self) -> TokenSelectorNode:
        return self._node

    def elaborate(self, platform):
        m = Module()
        node, sel = self._node, self._node.selector
        n, dim, heads, hd = node.tokens, node.dim, node.heads, node.head_dim
        nl, nj = node.n_local, node.n_hidden
        t = node.in_types[0]
        xshape = Shape(t.bits, t.signed)
        wshape = signed(sel.w_bits)

        def ram(name, shape, depth):
            mem = m.submodules[name] = memory.Memory(shape=shape, depth=depth, init=[])
            return mem.write_port(), mem.read_port(domain="comb")

        def rom(name, values, shape):
            mem = m.submodules[name] = memory.Memory(shape=shape, depth=len(values), init=[int(v) for v in values])
            return mem.read_port(domain="comb")

        tok_w, tok_r = ram("tokens", xshape, n * dim)
        loc_w, loc_r = ram("local", unsigned(node.local_bits), (n - 1) * heads * nl)
        gsum_w, gsum_r = ram("local_sum", unsigned(node.gsum_bits), heads * nl)
        glob_w, glob_r = ram("global", unsigned(node.local_bits), heads * nl)
        hid_w, hid_r = ram("hidden", unsigned(node.hidden_bits), nj)
        score_w, score_r = ram("score", unsigned(node.score_bits), n)
        pw_bits, pu_bits = node.package_widths
        pkw_w, pkw_r = ram("package_weighted", signed(pw_bits), dim)
        pku_w, pku_r = ram("package_plain", signed(pu_bits), dim)
        wl_r = rom("w_local", sel.w_local.reshape(-1), wshape)
        wh_r = rom("w_hidden", sel.w_hidden.reshape(-1), wshape)
        ws_r = rom("w_score", sel.w_score.reshape(-1), wshape)
        bl_r = rom("b_local", sel.b_local.reshape(-1), signed(32))
        bh_r = rom("b_hidden", sel.b_hidden.reshape(-1), signed(32))

        c = Signal(index_shape(n), name="token")
        h = Signal(index_shape(heads), name="head")
        o_idx = Signal(index_shape(max(nl, nj)), name="unit")  # local feature or hidden unit
        k = Signal(range(max(hd, 2 * nl, nj) + 1), name="step")
        f = Signal(index_shape(max(dim, heads * nl)), name="feature")
        widx = Signal(index_shape(n * dim))
        acc = Signal(signed(node.acc_width))
        fused = Signal(unsigned(node.fused_bits))
        count = Signal(range(n + 1))
        sent = Signal(range(n + 1))  # kept tokens sent so far
        den = Signal(unsigned((n * ONE).bit_length()))
        pruned = Signal(range(n + 1))
        threshold = self.threshold
        nin = Signal(range(n + 1), name="n_in", init=n)  # tokens in this inference's input frame
        cands = Signal(range(n), name="candidates")
        m.d.comb += cands.eq(nin - 1)
        feat = Signal(index_shape(dim), name="load_feature")
        tok = Signal(index_shape(n), name="load_token")

        # the package division (see the "package" state)
        qbits = node.package_quotient_bits
        neg = Signal(name="package_negative")
        rem = Signal(unsigned(max(pw_bits, pu_bits) + 2), name="package_remainder")
        dvs = Signal(unsigned(len(den) + qbits), name="package_divisor")
        quo = Signal(unsigned(qbits), name="package_quotient")
        step = Signal(range(qbits), name="package_step")
        pad = Signal(range(node.phase_cycles()["package"]), name="pad")

        head_bias = const_table(sel.b_score.tolist(), signed(32), h)
        head_weight = const_table(sel.head_weights.tolist(), unsigned(HEAD_WEIGHT_BITS + 1), h)

        if self._count_port:
            m.d.comb += self.count.payload.last.eq(1)
        with m.FSM(init="load"):
            with m.State("load"):
                m.d.comb += [self.i.ready.eq(1), tok_w.addr.eq(widx), tok_w.data.eq(self.i.payload.data),
                             tok_w.en.eq(self.i.valid)]
                with m.If(self.i.valid):
                    m.d.sync += [widx.eq(widx + 1), feat.eq(feat + 1)]
                    with m.If(feat == dim - 1):
                        m.d.sync += [feat.eq(0), tok.eq(tok + 1)]
                    with m.If(self.i.payload.last | (widx == n * dim - 1)):
                        m.d.sync += [widx.eq(0), feat.eq(0), tok.eq(0), nin.eq(tok + 1),
                                     c.eq(1), h.eq(0), o_idx.eq(0), k.eq(0), acc.eq(0), count.eq(1)]
                        m.next = "local"

            with m.State("local"):
                m.d.comb += [tok_r.addr.eq(c * dim + h * hd + k), wl_r.addr.eq((h * nl + o_idx) * hd + k)]
                with m.If(k < hd):
                    m.d.sync += [acc.eq(acc + tok_r.data * wl_r.data), k.eq(k + 1)]
                with m.Else():
                    m.d.comb += bl_r.addr.eq(h * nl + o_idx)
                    v = requantize(m, acc + bl_r.data, sel.rq_local, h, name="rq_local")
                    m.d.comb += [loc_w.addr.eq((c - 1) * (heads * nl) + h * nl + o_idx), loc_w.data.eq(v), loc_w.en.eq(1),
                                 gsum_r.addr.eq(h * nl + o_idx), gsum_w.addr.eq(h * nl + o_idx),
                                 gsum_w.data.eq(Mux(c == 1, v, gsum_r.data + v)), gsum_w.en.eq(1)]
                    m.d.sync += [acc.eq(0), k.eq(0)]
                    with m.If(o_idx == nl - 1):
                        m.d.sync += o_idx.eq(0)
                        with m.If(h == heads - 1):
                            m.d.sync += h.eq(0)
                            with m.If(c == nin - 1):
                                m.d.sync += f.eq(0)
                                m.next = "global"
                            with m.Else():
                                m.d.sync += c.eq(c + 1)
                        with m.Else():
                            m.d.sync += h.eq(h + 1)
                    with m.Else():
                        m.d.sync += o_idx.eq(o_idx + 1)

            with m.State("global"):
                m.d.comb += [gsum_r.addr.eq(f), glob_w.addr.eq(f), glob_w.en.eq(1),
                             glob_w.data.eq((gsum_r.data * 2 + cands) // (2 * cands))]
                m.d.sync += f.eq(f + 1)
                with m.If(f == heads * nl - 1):
                    m.d.sync += [c.eq(1), h.eq(0), o_idx.eq(0), k.eq(0), acc.eq(0), fused.eq(0)]
                    m.next = "hidden"

            with m.State("hidden"):
                m.d.comb += [loc_r.addr.eq((c - 1) * (heads * nl) + h * nl + k), glob_r.addr.eq(h * nl + (k - nl)),
                             wh_r.addr.eq((h * nj + o_idx) * (2 * nl) + k)]
                feature = Mux(k < nl, loc_r.data, glob_r.data)
                with m.If(k < 2 * nl):
                    m.d.sync += [acc.eq(acc + feature * wh_r.data), k.eq(k + 1)]
                with m.Else():
                    m.d.comb += bh_r.addr.eq(h * nj + o_idx)
                    v = requantize(m, acc + bh_r.data, sel.rq_hidden, h, name="rq_hidden")
                    m.d.comb += [hid_w.addr.eq(o_idx), hid_w.data.eq(v), hid_w.en.eq(1)]
                    m.d.sync += [acc.eq(0), k.eq(0)]
                    with m.If(o_idx == nj - 1):
                        m.d.sync += o_idx.eq(0)
                        m.next = "logit"
                    with m.Else():
                        m.d.sync += o_idx.eq(o_idx + 1)

            with m.State("logit"):
                m.d.comb += [hid_r.addr.eq(k), ws_r.addr.eq(h * nj + k)]
                with m.If(k < nj):
                    m.d.sync += [acc.eq(acc + hid_r.data * ws_r.data), k.eq(k + 1)]
                with m.Else():
                    z = Signal(signed(node.logit_bits))
                    m.d.comb += z.eq(requantize(m, acc + head_bias, sel.rq_score, h, name="rq_score"))
                    total = Signal(unsigned(node.fused_bits))
                    m.d.comb += total.eq(fused + head_weight * sigmoid(z, sel.logit_frac))
                    m.d.sync += [acc.eq(0), k.eq(0)]
                    with m.If(h == heads - 1):
                        score = Signal(unsigned(node.score_bits))
                        m.d.comb += [score.eq((total + (1 << (HEAD_WEIGHT_BITS - 1))) >> HEAD_WEIGHT_BITS),
                                     score_w.addr.eq(c), score_w.data.eq(score), score_w.en.eq(1)]
                        with m.If(score >= threshold):
                            m.d.sync += count.eq(count + 1)
                        m.d.sync += [fused.eq(0), h.eq(0)]
                        with m.If(c == nin - 1):
                            m.next = "count"
                        with m.Else():
                            m.d.sync += c.eq(c + 1)
                            m.next = "hidden"
                    with m.Else():
                        m.d.sync += [fused.eq(total), h.eq(h + 1)]
                        m.next = "hidden"

            with m.State("count"):
                taken = Const(1)
                if self._count_port:
                    m.d.comb += [self.count.valid.eq(1), self.count.payload.data.eq(count)]
                    taken = self.count.ready
                with m.If(taken):
                    m.d.sync += [c.eq(0), f.eq(0), sent.eq(0), den.eq(0), pruned.eq(0)]
                    m.next = "output"
                    with m.If(count == nin):
                        m.next = "pad"

            with m.State("pad"):  # nothing pruned: idle as long as the package phase would take
                m.d.sync += pad.eq(pad + 1)
                with m.If(pad == node.phase_cycles()["package"] - 1):
                    m.d.sync += pad.eq(0)
                    m.next = "output"

            with m.State("output"):
                m.d.comb += [tok_r.addr.eq(c * dim + f), score_r.addr.eq(c), pkw_r.addr.eq(f), pku_r.addr.eq(f),
                             pkw_w.addr.eq(f), pku_w.addr.eq(f)]
                x, s = tok_r.data, score_r.data
                kept = (c == 0) | (s >= threshold)
                advance = Signal()
                with m.If(kept):
                    m.d.comb += [self.o.valid.eq(1), self.o.payload.data.eq(x),
                                 self.o.payload.last.eq((f == dim - 1) & (sent == count - 1) & (count == nin)),
                                 advance.eq(self.o.ready)]
                with m.Else():
                    m.d.comb += [advance.eq(1), pkw_w.en.eq(1), pku_w.en.eq(1),
                                 pkw_w.data.eq(Mux(pruned == 0, s * x, pkw_r.data + s * x)),
                                 pku_w.data.eq(Mux(pruned == 0, x, pku_r.data + x))]
                with m.If(advance):
                    with m.If(f == dim - 1):
                        m.d.sync += f.eq(0)
                        with m.If(kept):
                            m.d.sync += sent.eq(sent + 1)
                        with m.Else():
                            m.d.sync += [den.eq(den + s), pruned.eq(pruned + 1)]
                        with m.If(c == nin - 1):
                            m.next = "package"
                            with m.If(count == nin):
                                m.next = "load"
                        with m.Else():
                            m.d.sync += c.eq(c + 1)
                    with m.Else():
                        m.d.sync += f.eq(f + 1)

            # The package token, one feature at a time: floor(num / div) of the reference's round-half-up
            # form, num signed, div > 0, by a restoring division of |num| (made floor for a negative num:
            # -floor((-num + div - 1) / div)), one quotient bit per cycle (a combinational divider of
            # these widths is too deep: Yosys's ABC9 ran out of stack on it).
            with m.State("package"):
                m.d.comb += [pkw_r.addr.eq(f), pku_r.addr.eq(f)]
                weighted = den != 0
                num = Signal(signed(max(pw_bits, pu_bits) + 2))
                div = Signal(unsigned(len(den) + 1))
                m.d.comb += [num.eq(Mux(weighted, pkw_r.data, pku_r.data) * 2 + Mux(weighted, den, pruned)),
                             div.eq(Mux(weighted, den, pruned) * 2)]
                m.d.sync += [neg.eq(num < 0), rem.eq(Mux(num < 0, -num + div - 1, num)), dvs.eq(div << (qbits - 1)),
                             quo.eq(0), step.eq(0)]
                m.next = "divide"

            with m.State("divide"):
                restoring_step(m, rem=rem, div=dvs, quo=quo)
                m.d.sync += step.eq(step + 1)
                with m.If(step == qbits - 1):
                    m.next = "emit"

            with m.State("emit"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.data.eq(Mux(neg, -quo, quo)),
                             self.o.payload.last.eq(f == dim - 1)]
                with m.If(self.o.ready):
                    m.d.sync += f.eq(f + 1)
                    m.next = "package"
                    with m.If(f == dim - 1):
                        m.d.sync += f.eq(0)
                        m.next = "load"
        return m

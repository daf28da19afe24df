"""The token selector's plan node: its configuration, widths and cycle model
(`cdsl.hw.token_selector.TokenSelectorEngine` is its engine, `cdsl.contract.ref.token_selector` its
arithmetic).

The selector is not a layer kind of its own in the integer model (the encoder's payload holds a
`TokenSelector`), so nothing registers a planner for it here: `plan_token_selector` builds the node
from a selector and the stream it reads. Its input holds n tokens (2..N, n < N when an earlier
selector pruned the stream; the engine reads n from `last`) and its output length varies per inference
(`out_tokens` is None: the count comes from the golden trace, `cdsl.contract.ref.encoder.kept_counts`).

Cycle model (inputs offered every cycle, outputs always taken; one MAC, every memory read
combinational), phases in order, for n input tokens:
    load     n*D                               one input word per cycle (the engine is always ready)
    local    (n-1) * H * L * (d + 1)            d products, then requantize and store
    global   H * L                             one division per global feature
    score    (n-1) * H * (J * (2L + 1) + J + 1) hidden units, then the logit, sigmoid and head sum
    count    1                                 the count word (on `count` in the block tests' engine)
    output   n*D                               each token word is sent (kept) or folded (pruned)
    package  D * (q + 2)                       per feature: load the division, q restoring steps
                                               (q = `package_quotient_bits`, the token width), send
                                               the word; when nothing was pruned the engine idles as
                                               long before `output` instead (`pad`)
cycles(count, n) = the sum, from the first input offered to the last output word, inclusive. It does
not depend on `count`: the pad makes "nothing pruned" (n tokens out) and "one token pruned" (n - 1
kept + the package: also n tokens out) take the same time, so the output length alone, which is
all a downstream reader sees, always fixes the selector's timing. The delay (last input word to last
output word) is cycles - n*D, exact whatever the spacing of the input words (they are only stored).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdsl.contract import codec
from cdsl.contract.ref.int_sigmoid import OUT_BITS as SIGMOID_BITS
from cdsl.contract.intmodel import Setting
from cdsl.contract.ref.token_selector import HEAD_WEIGHT_BITS, MAX_THRESHOLD, SCORE_ONE, TokenSelector
from cdsl.hw.plan import Node, StreamType
from cdsl.hw.widths import dot_range, signed_width


def _ubits(qmax: int) -> int:
    return max(1, qmax.bit_length())


@codec.serializable("token_selector_engine")
@dataclass(frozen=True, eq=False)
class TokenSelectorNode(Node):
    name: str
    inputs: tuple[str, ...]
    in_types: tuple[StreamType, ...]
    out_type: StreamType  # the tokens out: at most N of D, the input's type
    selector: TokenSelector
    tokens: int  # N
    dim: int  # D

    # ------------------------------------------------------------ sizes
    @property
    def heads(self) -> int:
        return self.selector.heads

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def n_local(self) -> int:
        return self.selector.local_features

    @property
    def n_hidden(self) -> int:
        return self.selector.hidden

    @property
    def x_range(self) -> tuple[int, int]:
        return self.in_types[0].range

    @property
    def local_bits(self) -> int:
        return _ubits(self.selector.rq_local.qmax)

    @property
    def hidden_bits(self) -> int:
        return _ubits(self.selector.rq_hidden.qmax)

    @property
    def logit_bits(self) -> int:
        return (-self.selector.rq_score.qmin).bit_length()

    def _bias_range(self, name: str) -> tuple[int, int]:
        b = getattr(self.selector, name)
        return int(b.min()), int(b.max())

    @property
    def acc_width(self) -> int:
        """The one accumulator: wide enough for the local, hidden and logit dot products plus bias."""
        s = self.selector
        ranges = [
            dot_range(self.x_range, s.w_bits, self.head_dim, self._bias_range("b_local")),
            dot_range((0, s.rq_local.qmax), s.w_bits, 2 * self.n_local, self._bias_range("b_hidden")),
            dot_range((0, s.rq_hidden.qmax), s.w_bits, self.n_hidden, self._bias_range("b_score")),
        ]
        return max(signed_width(*r) for r in ranges)

    @property
    def gsum_bits(self) -> int:
        return _ubits((self.tokens - 1) * self.selector.rq_local.qmax)

    @property
    def fused_bits(self) -> int:
        return _ubits(SCORE_ONE << HEAD_WEIGHT_BITS | (1 << (HEAD_WEIGHT_BITS - 1)))

    @property
    def package_widths(self) -> tuple[int, int]:
        """(bits of sum score * x, bits of sum x) over at most N-1 pruned tokens, signed."""
        lo, hi = self.x_range
        n = self.tokens - 1
        return (signed_width(n * SCORE_ONE * min(lo, 0), n * SCORE_ONE * max(hi, 0)),
                signed_width(n * min(lo, 0), n * max(hi, 0)))

    @property
    def package_quotient_bits(self) -> int:
        """Quotient bits of the package division: the token width (a weighted mean of the pruned tokens,
        rounded half up, lies in their range, so its magnitude is below 2**bits)."""
        return self.in_types[0].bits

    @property
    def score_bits(self) -> int:
        return SIGMOID_BITS

    # ------------------------------------------------------------ cycle model
    def _tokens_in(self, tokens: int | None) -> int:
        n = self.tokens if tokens is None else tokens
        if not isinstance(n, int) or isinstance(n, bool) or not 2 <= n <= self.tokens:
            raise ValueError(f"tokens must be in 2..{self.tokens}, got {tokens!r}")
        return n

    def phase_cycles(self, tokens: int | None = None) -> dict[str, int]:
        """Each phase's cycles for an input of `tokens` tokens (default N); "package" is the package
        phase or, when nothing was pruned, the pad in its place."""
        n, d = self._tokens_in(tokens), self.dim
        h, nl, nj, hd = self.heads, self.n_local, self.n_hidden, self.head_dim
        return {"load": n * d, "local": (n - 1) * h * nl * (hd + 1), "global": h * nl,
                "score": (n - 1) * h * (nj * (2 * nl + 1) + nj + 1), "count": 1, "output": n * d,
                "package": d * (self.package_quotient_bits + 2)}

    def cycles(self, count: int, tokens: int | None = None) -> int:
        """Cycles of one inference on `tokens` input tokens (default N) that keeps `count` of them (the
        class token included; checked, though the timing does not depend on it, see the module docstring)."""
        n = self._tokens_in(tokens)
        if not isinstance(count, int) or not 1 <= count <= n:
            raise ValueError(f"count must be in 1..{n}, got {count!r}")
        return sum(self.phase_cycles(n).values())

    def out_tokens(self, tokens: int) -> int | None:
        return None  # the data decides (the trace's `kept_counts`)

    def delay_tokens(self, settings, tokens: int, kept: int | None = None) -> int:
        """Cycles from the last input word to the last output word for `tokens` input tokens; `kept`
        (the output tokens, count + package) is checked: 2..tokens."""
        n = self._tokens_in(tokens)
        if kept is not None and not 2 <= kept <= n:
            raise ValueError(f"{self.name}: {kept!r} output tokens from {n} input tokens (expected 2..{n})")
        return self.cycles(1, n) - n * self.dim

    def settings(self) -> tuple[Setting, ...]:
        return (Setting("threshold", 0, MAX_THRESHOLD, self.selector.threshold,
                        "keep threshold of the token scores, in 1/256 (257: only the class token)"),)

    def delay(self, settings=None) -> int:
        """Cycles from the last input word to the last output word on a full frame of N tokens."""
        return self.delay_tokens(settings, self.tokens)

    interval_exact = False  # a bound: the input's token count varies

    def interval(self, settings=None) -> int:
        """A bound: one inference at a time on N tokens, every phase, one more cycle to return to loading."""
        return self.cycles(1) + 1

    def memory_bits(self) -> int:
        return self.tokens * self.dim * self.in_types[0].bits

    def component(self, *, count: bool = False):
        """The engine; `count=True` adds the kept-count output port (block tests); the network's has none."""
        from cdsl.hw.token_selector import TokenSelectorEngine

        return TokenSelectorEngine(node=self, count=count)

    def describe(self) -> str:
        return (f"token selector ({self.tokens} tokens of {self.dim}, {self.heads} heads, L={self.n_local}, "
                f"J={self.n_hidden}, threshold {self.selector.threshold}/256)")

    def figures(self, settings=None) -> dict:
        return {"delay": self.delay(), "phases": self.phase_cycles(), "acc_width": self.acc_width,
                "memory_words": {"tokens": self.tokens * self.dim,
                                 "local": (self.tokens - 1) * self.heads * self.n_local}}


def plan_token_selector(selector: TokenSelector, *, name: str, input: str, in_type: StreamType) -> TokenSelectorNode:
    """The node of `selector` reading the stream `input` of tokens [N, D] (`in_type.shape`)."""
    if len(in_type.shape) != 2:
        raise ValueError(f"token selector {name!r}: expected a stream of tokens [N, D], found shape {list(in_type.shape)}")
    n, dim = in_type.shape
    from cdsl.contract.intmodel import QType

    selector.check(n, dim, QType(in_type.bits, in_type.signed, 1.0), field=f"{name}.selector")
    return TokenSelectorNode(name=name, inputs=(input,), in_types=(in_type,), out_type=in_type, selector=selector,
                             tokens=n, dim=dim)

"""Attention as a plan node: `AttentionNode` and `plan_attention` (an encoder's `attn` step). Its hardware
is `cdsl.hw.attention.Attention` (scores q_h . k_h, Shiftmax, p . v_h, the `attn` requantization);
its arithmetic is the encoder reference's (`cdsl.contract.ref.encoder.block`).

Input: the QKV projection's token stream [N, 3 D], token-major, each token's q row, k row and v row
(3 D words); a frame may hold any n of 1..N tokens (fewer after a token selector). Output: [N, D], as
many tokens. The engine loads the frame as it is offered (always ready while loading) and computes
after the frame's `last` word, so with `AttentionTiming.cycles(n)` (inputs every cycle, from the first
word to the last result; with L lanes and G = hd / L, 3 n D + n H (n G + 2 n + Q + G (n + L - 1)) + 2)

    delay_tokens(n) = cycles(n) - 3 n D       (one lane: n H (2 n hd + 2 n + Q) + 2)

from the last input transfer to the last output transfer, whatever the spacing of the input words.
The engine holds one frame (single-buffered): back to back it takes the next frame's first word
RQ = 2 cycles before the previous frame's last result, so `interval` = cycles(N) - 2 with every word
offered at once; it is a bound (`interval_exact = False`): fewer tokens take fewer cycles, and a
producer slower than one word per cycle stretches the load.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdsl.contract import codec
from cdsl.contract.intmodel import Requant
from cdsl.hw.attention import Attention, AttentionTiming, memory_bits, score_bits
from cdsl.hw.kinds import _vit_checks as checks
from cdsl.hw.plan import Foldable, Node, StreamType
from cdsl.hw.requant_unit import LATENCY as RQ_LATENCY
from cdsl.hw.shiftmax import recip_bits

__all__ = ["AttentionNode", "plan_attention"]


@codec.serializable("attention_engine")
@dataclass(frozen=True, eq=False)
class AttentionNode(Node, Foldable):
    """Foldable in its lanes (multipliers side by side on a head's features: a divisor of hd); one
    token at a time (PE 1)."""

    name: str
    inputs: tuple[str, ...]
    in_types: tuple[StreamType, ...]  # [N, 3 D]
    out_type: StreamType  # [N, D]
    heads: int
    x0: int
    attn: Requant
    lanes: int = 1
    lanes_fixed: bool = False
    pe: int = 1

    @property
    def tokens(self) -> int:  # N
        return self.in_types[0].shape[0]

    @property
    def dim(self) -> int:  # D
        return self.out_type.shape[1]

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def timing(self) -> AttentionTiming:
        return AttentionTiming(self.dim, self.heads, self.x0, self.lanes)

    @property
    def max_lanes(self) -> int:
        return self.head_dim

    def lane_choices(self) -> tuple[int, ...]:
        if self.lanes_fixed:
            return (self.lanes,)
        return tuple(k for k in range(1, self.head_dim + 1) if self.head_dim % k == 0)

    def busy_cycles(self, settings) -> int:
        return self.timing.cycles(self.tokens)

    def component(self) -> Attention:
        r, out = self.attn, self.out_type
        return Attention(dim=self.dim, heads=self.heads, max_tokens=self.tokens, in_bits=self.in_types[0].bits,
                         x0=self.x0, multipliers=r.multiplier.tolist(), shifts=r.shift.tolist(), qmin=r.qmin,
                         qmax=r.qmax, out_bits=out.bits, out_signed=out.signed, lanes=self.lanes)

    def delay_tokens(self, settings, tokens: int, kept: int | None = None) -> int:
        if not (isinstance(tokens, int) and 1 <= tokens <= self.tokens):
            raise ValueError(f"{self.name}: tokens must be in 1..{self.tokens}, got {tokens!r}")
        return self.timing.cycles(tokens) - 3 * tokens * self.dim

    def delay(self, settings) -> int:
        return self.delay_tokens(settings, self.tokens)

    interval_exact = False  # see the module docstring

    def interval(self, settings) -> int:
        return self.timing.cycles(self.tokens) - RQ_LATENCY

    def memory_bits(self) -> int:
        return memory_bits(dim=self.dim, heads=self.heads, max_tokens=self.tokens, in_bits=self.in_types[0].bits,
                           x0=self.x0)

    def describe(self) -> str:
        return (f"attention ({self.tokens} tokens of {self.dim}, {self.heads} heads, Shiftmax x0 {self.x0}, "
                f"{self.lanes} lane{'s' if self.lanes > 1 else ''}{' (fixed)' if self.lanes_fixed else ''})")

    def figures(self, settings) -> dict:
        n, d, h, lanes = self.tokens, self.dim, self.heads, self.lanes
        g = self.head_dim // lanes
        return {"delay": self.delay(settings), "interval": self.interval(settings), "lanes": lanes,
                "phases": {"load": 3 * n * d, "score": n * h * n * g, "softmax": n * h * (2 * n + recip_bits(self.x0)),
                           "av": n * h * g * (n + lanes - 1), "drain": RQ_LATENCY},
                "score_bits": score_bits(self.in_types[0].bits, d, h),
                "memory_words": {"q": n * d, "k": n * d, "v": n * d, "p": n, "softmax": 2 * n}}


def plan_attention(name: str, input: str, in_type: StreamType, *, heads: int, x0: int, attn: Requant,
                   out_type: StreamType, lanes: int = 1, lanes_fixed: bool = False) -> AttentionNode:
    """The node of the attention reading the QKV stream `input` ([N, 3 D], `in_type`) onto `out_type` [N, D],
    with `lanes` multipliers (a divisor of D / heads; `lanes_fixed`: folding leaves them alone)."""
    n, width = checks.token_stream(name, "attention", in_type, signed_bits=(2, 16))
    if width % 3:
        raise ValueError(f"attention {name!r}: a token of q, k and v has 3 D words, found {width}")
    dim = width // 3
    if not (isinstance(heads, int) and heads >= 1 and dim % heads == 0):
        raise ValueError(f"attention {name!r}: heads must divide D = {dim}, got {heads!r}")
    if not (isinstance(x0, int) and -(1 << 30) <= x0 <= -1):
        raise ValueError(f"attention {name!r}: x0 must be an integer in [-2**30, -1], got {x0!r}")
    if not (isinstance(lanes, int) and lanes >= 1 and (dim // heads) % lanes == 0):
        raise ValueError(f"attention {name!r}: lanes must divide the head's {dim // heads} features, got {lanes!r}")
    checks.out_shape(name, "attention", out_type, (n, dim))
    checks.requant(f"{name}.attn", attn, out_type, channels=dim)
    return AttentionNode(name=name, inputs=(input,), in_types=(in_type,), out_type=out_type, heads=heads, x0=x0,
                         attn=attn, lanes=lanes, lanes_fixed=bool(lanes_fixed))

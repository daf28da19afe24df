"""Layer norm as a plan node: `LayerNormNode` and `plan_layernorm` (the ViT kinds plan their norms with
it: an encoder's norm1 and norm2, the class head's norm). Its hardware is
`cdsl.hw.gated_layernorm.GatedLayerNorm`: a frame gate (`cdsl.hw.frame_gate`) in front of the
I-LayerNorm engine (`cdsl.hw.layernorm`); its arithmetic is `IntNorm` (`cdsl.contract.ref._vit`,
`cdsl.contract.ref.int_layernorm`).

The input is a token stream [N, D] (one token a row, token-major); a frame may hold any n of 1..N tokens
(fewer after a token selector), and the output has as many. Cycle model, with T the engine's cycles per
token (`LayerNormTiming.token_cycles`: 2 D + QS + QF + 1 + RQ, RQ = the requantizer's 2 stages):
the gate releases the frame `release_latency(n D)` cycles after its last word (1; 2 for a frame of one
word), and the engine then takes a token every T - RQ cycles, the last result RQ cycles after its
last push, so

    delay_tokens(n) = release_latency(n D) + n (T - RQ) + RQ - 1

from the last input transfer to the last output transfer, whatever the spacing of the input words.
Back to back the gate takes the next frame while the engine works, so a frame starts every N (T - RQ)
cycles (`interval`).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdsl.contract import codec
from cdsl.contract.ref._vit import IntNorm
from cdsl.hw.frame_gate import FrameGate, gate_bits, release_latency
from cdsl.hw.kinds import _vit_checks as checks
from cdsl.hw.layernorm import LayerNorm, LayerNormTiming
from cdsl.hw.plan import Node, StreamType
from cdsl.hw.requant_unit import LATENCY as RQ_LATENCY

__all__ = ["LayerNormNode", "plan_layernorm"]


@codec.serializable("layernorm_engine")
@dataclass(frozen=True, eq=False)
class LayerNormNode(Node):
    name: str
    inputs: tuple[str, ...]
    in_types: tuple[StreamType, ...]
    out_type: StreamType  # [N, D], as many tokens as came in
    norm: IntNorm

    @property
    def tokens(self) -> int:  # N: the longest frame, in tokens
        return self.in_types[0].shape[0]

    @property
    def dim(self) -> int:  # D
        return self.in_types[0].shape[1]

    @property
    def timing(self) -> LayerNormTiming:
        return LayerNormTiming(self.dim, self.in_types[0].bits)

    def engine(self) -> LayerNorm:
        r, out = self.norm.requant, self.out_type
        return LayerNorm(dim=self.dim, in_bits=self.in_types[0].bits, gamma=self.norm.gamma.tolist(),
                         beta=self.norm.beta.tolist(), multiplier=int(r.multiplier[0]), shift=int(r.shift[0]),
                         qmin=r.qmin, qmax=r.qmax, out_bits=out.bits, out_signed=out.signed)

    def gate(self) -> FrameGate:
        t = self.in_types[0]
        return FrameGate(bits=t.bits, signed=t.signed, words=t.words)

    def component(self):
        from cdsl.hw.gated_layernorm import GatedLayerNorm

        return GatedLayerNorm(node=self)

    def _check_tokens(self, tokens: int) -> int:
        if not (isinstance(tokens, int) and 1 <= tokens <= self.tokens):
            raise ValueError(f"{self.name}: tokens must be in 1..{self.tokens}, got {tokens!r}")
        return tokens

    def token_period(self) -> int:
        """Cycles between the starts of two tokens in the engine (T - RQ)."""
        return self.timing.token_cycles() - RQ_LATENCY

    def delay_tokens(self, settings, tokens: int, kept: int | None = None) -> int:
        n = self._check_tokens(tokens)
        return release_latency(n * self.dim) + n * self.token_period() + RQ_LATENCY - 1

    def delay(self, settings) -> int:
        return self.delay_tokens(settings, self.tokens)

    def interval(self, settings) -> int:
        return self.tokens * self.token_period()

    def memory_bits(self) -> int:
        return gate_bits(bits=self.in_types[0].bits, words=self.in_types[0].words) + self.timing.memory_bits

    def describe(self) -> str:
        return (f"layer norm ({self.tokens} tokens of {self.dim}, {self.token_period()} cycles per token, "
                f"behind a frame gate of {self.in_types[0].words} words)")

    def figures(self, settings) -> dict:
        t = self.timing
        return {"delay": self.delay(settings), "interval": self.interval(settings),
                "token_cycles": t.token_cycles(), "token_period": self.token_period(),
                "phases": {"load": self.dim, "sqrt": t.sqrt_steps, "recip": t.recip_bits, "wait": 1,
                           "out": self.dim, "drain": RQ_LATENCY},
                "memory_bits": {"gate": gate_bits(bits=self.in_types[0].bits, words=self.in_types[0].words),
                                "token": self.timing.memory_bits}}


def plan_layernorm(name: str, input: str, in_type: StreamType, norm: IntNorm, *, out_type: StreamType) -> LayerNormNode:
    """The node normalizing the token stream `input` ([N, D], `in_type`) with `norm` onto `out_type`."""
    if not isinstance(norm, IntNorm):
        raise TypeError(f"{name}: norm must be an IntNorm, not {norm!r}")
    _, dim = checks.token_stream(name, "layer norm", in_type, signed_bits=(2, 10))
    checks.out_shape(name, "layer norm", out_type, in_type.shape)
    norm.check(f"{name}.norm", dim)
    checks.requant(f"{name}.norm.requant", norm.requant, out_type, channels=1)
    return LayerNormNode(name=name, inputs=(input,), in_types=(in_type,), out_type=out_type, norm=norm)

"""The plan node of the class-token head's first part: token 0 of a frame of any length (1..N
tokens of D), out [1, D], on a `FirstToken` engine (`cdsl.hw.first_token`).

Cycle model: the token leaves after the frame's last word: delay = D + 1 from the last input
transfer to the last output transfer (one cycle of memory latency, then one word per cycle),
whatever the frame's length and the spacing of its words.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdsl.contract import codec
from cdsl.hw.plan import Node, StreamType

__all__ = ["FirstTokenNode", "plan_first_token"]


@codec.serializable("first_token")
@dataclass(frozen=True, eq=False)
class FirstTokenNode(Node):
    name: str
    inputs: tuple[str, ...]
    in_types: tuple[StreamType, ...]  # tokens [N, D]
    out_type: StreamType  # [1, D]

    @property
    def dim(self) -> int:
        return self.in_types[0].shape[1]

    def component(self):
        from cdsl.hw.first_token import FirstToken

        return FirstToken(node=self)

    def delay(self, settings) -> int:
        return self.dim + 1

    def delay_tokens(self, settings, tokens, kept=None) -> int:
        return self.delay(settings)

    def out_tokens(self, tokens: int) -> int | None:
        return 1

    def interval(self, settings) -> int:
        """Back to back: a whole frame of N tokens taken (one word per cycle), then the token sent,
        and one cycle to return to loading."""
        return self.in_types[0].words + self.dim + 1

    def memory_bits(self) -> int:
        return self.dim * self.in_types[0].bits

    def describe(self) -> str:
        return f"first token of {list(self.in_types[0].shape)} -> [1, {self.dim}]"

    def figures(self, settings) -> dict:
        return {"delay": self.delay(settings), "interval": self.interval(settings), "token_bits": self.memory_bits()}


def plan_first_token(name: str, input: str, in_type: StreamType) -> FirstTokenNode:
    """The node keeping token 0 of the token stream `input` ([N, D], `in_type`)."""
    if len(in_type.shape) != 2:
        raise ValueError(f"first token {name!r}: expected a stream of tokens [N, D], found shape {list(in_type.shape)}")
    return FirstTokenNode(name=name, inputs=(input,), in_types=(in_type,),
                          out_type=StreamType(in_type.bits, in_type.signed, (1, in_type.shape[1])))

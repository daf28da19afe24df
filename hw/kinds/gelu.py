"""i-GELU as a plan node: `GeluNode` and `plan_gelu` (an encoder's `gelu` step, between fc1 and fc2).
Its hardware is `cdsl.hw.gelu.Gelu` (`int_gelu` then the one requantization, element by element);
its arithmetic is `cdsl.contract.ref.int_gelu` and the encoder's `gelu` requantization.

A streaming engine: one word per cycle in and out, any number of tokens per frame (1..N), `last`
carried with its element. The last result leaves RQ = 2 cycles (the requantizer's stages) after the
last input word is taken, however the words were spaced: `delay_tokens(n)` = 2 for every n.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdsl.contract import codec
from cdsl.contract.intmodel import Requant
from cdsl.hw.gelu import Gelu
from cdsl.hw.kinds import _vit_checks as checks
from cdsl.hw.plan import Node, StreamType
from cdsl.hw.requant_unit import LATENCY as RQ_LATENCY

__all__ = ["GeluNode", "plan_gelu"]


@codec.serializable("gelu_engine")
@dataclass(frozen=True, eq=False)
class GeluNode(Node):
    name: str
    inputs: tuple[str, ...]
    in_types: tuple[StreamType, ...]
    out_type: StreamType
    cut: int
    c: int
    requant: Requant  # per tensor

    def component(self) -> Gelu:
        r, out = self.requant, self.out_type
        return Gelu(in_bits=self.in_types[0].bits, cut=self.cut, c=self.c, multiplier=int(r.multiplier[0]),
                    shift=int(r.shift[0]), qmin=r.qmin, qmax=r.qmax, out_bits=out.bits, out_signed=out.signed)

    def delay(self, settings) -> int:
        return RQ_LATENCY

    def describe(self) -> str:
        return f"i-GELU (streaming, {self.in_types[0].words} words, cut {self.cut}, c {self.c})"

    def figures(self, settings) -> dict:
        return {"delay": self.delay(settings), "interval": self.interval(settings), "cut": self.cut, "c": self.c}


def plan_gelu(name: str, input: str, in_type: StreamType, *, cut: int, c: int, requant: Requant,
              out_type: StreamType) -> GeluNode:
    """The node applying i-GELU (`cut`, `c`) and `requant` to the stream `input` (`in_type`) onto `out_type`."""
    checks.token_stream(name, "GELU", in_type, signed_bits=(2, 16))
    checks.out_shape(name, "GELU", out_type, in_type.shape)
    for what, v, hi in (("cut", cut, 1 << 20), ("c", c, 1 << 40)):
        if not (isinstance(v, int) and 1 <= v <= hi):
            raise ValueError(f"GELU {name!r}: {what} must be an integer in 1..{hi}, got {v!r}")
    checks.requant(f"{name}.gelu", requant, out_type, channels=1)
    if requant.multiplier.shape != (1,):
        raise ValueError(f"GELU {name!r}: the engine takes one requantization for the tensor, "
                         f"found {requant.multiplier.shape[0]}")
    return GeluNode(name=name, inputs=(input,), in_types=(in_type,), out_type=out_type, cut=cut, c=c, requant=requant)

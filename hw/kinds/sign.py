"""sign: a combinational `Sign` engine (+1 where x >= 0, -1 elsewhere); it binarizes a fixed-point layer's
output for the binary layer that reads it, and turns a binary layer's clamped margin into +1/-1."""

from __future__ import annotations

from dataclasses import dataclass

from cdsl.contract import codec
from cdsl.contract.ref.activation import SignPayload
from cdsl.hw.plan import Node, StreamType
from cdsl.hw.registry import register


@codec.serializable("sign_engine")
@dataclass(frozen=True, eq=False)
class SignNode(Node):
    name: str
    inputs: tuple[str, ...]
    in_types: tuple[StreamType, ...]
    out_type: StreamType

    def component(self):
        from cdsl.hw.sign import Sign

        return Sign(in_bits=self.in_types[0].bits, in_signed=self.in_types[0].signed)

    def delay(self, settings):
        return 0  # combinational

    def describe(self) -> str:
        return "sign (combinational)"


@register(SignPayload)
def plan_sign(layer, ctx):
    return SignNode(name=layer.name, inputs=ctx.in_streams, in_types=ctx.in_types,
                    out_type=StreamType(layer.out_type.bits, layer.out_type.signed, tuple(layer.out_shape)))

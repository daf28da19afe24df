"""relu: fused away (an alias of its input stream) when its input is unsigned, else a `Relu` engine."""

from __future__ import annotations

from dataclasses import dataclass

from cdsl.contract import codec
from cdsl.contract.ref.activation import ReluPayload
from cdsl.hw.plan import Alias, Node, StreamType
from cdsl.hw.registry import register


@codec.serializable("relu_engine")
@dataclass(frozen=True, eq=False)
class ReluNode(Node):
    name: str
    inputs: tuple[str, ...]
    in_types: tuple[StreamType, ...]
    out_type: StreamType

    def component(self):
        from cdsl.hw.relu import Relu

        return Relu(in_bits=self.in_types[0].bits, out_bits=self.out_type.bits, out_signed=self.out_type.signed)

    def delay(self, settings):
        return 0  # combinational

    def describe(self) -> str:
        return "ReLU (combinational)"


@register(ReluPayload)
def plan_relu(layer, ctx):
    (in_type,) = ctx.in_types
    if not in_type.signed:
        return Alias(ctx.in_streams[0])  # max(x, 0) of an unsigned stream is the stream itself
    return ReluNode(name=layer.name, inputs=ctx.in_streams, in_types=ctx.in_types,
                    out_type=StreamType(layer.out_type.bits, layer.out_type.signed, tuple(layer.out_shape)))

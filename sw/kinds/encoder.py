"""encoder: trained in float and fake quantization; no integer form yet (integer softmax, LayerNorm
and GELU come with the token-selection work)."""

from __future__ import annotations

from cdsl.dsl import ir
from cdsl.sw.kinds._float_only import FloatOnlyKind
from cdsl.sw.layers import EncoderBlock
from cdsl.sw.registry import register


@register(ir.Encoder)
class EncoderKind(FloatOnlyKind):
    name = "encoder"

    def build(self, model, layer, scales):
        ann = layer.annotations
        return EncoderBlock(dim=model.shape_of(layer.inputs[0])[1], heads=layer.op.heads, mlp=layer.op.mlp,
                            quant=ann.quant, prune=ann.prune, scales=scales)

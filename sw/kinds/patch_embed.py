"""patch_embed: trained in float and fake quantization; no integer form yet (integer softmax, LayerNorm
and GELU come with the token-selection work)."""

from __future__ import annotations

from cdsl.dsl import ir
from cdsl.sw.kinds._float_only import FloatOnlyKind
from cdsl.sw.layers import PatchEmbed
from cdsl.sw.registry import register


@register(ir.PatchEmbed)
class PatchEmbedKind(FloatOnlyKind):
    name = "patch_embed"

    def build(self, model, layer, scales):
        c, h, w = model.shape_of(layer.inputs[0])
        ann = layer.annotations
        return PatchEmbed(channels=c, size=(h, w), patch=layer.op.patch, dim=layer.op.dim, quant=ann.quant,
                          prune=ann.prune, scales=scales)

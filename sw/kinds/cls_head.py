"""cls_head: trained in float and fake quantization; no integer form yet (integer softmax, LayerNorm
and GELU come with the token-selection work)."""

from __future__ import annotations

from cdsl.dsl import ir
from cdsl.sw.kinds._float_only import FloatOnlyKind
from cdsl.sw.layers import ClsHead
from cdsl.sw.registry import register


@register(ir.ClsHead)
class ClsHeadKind(FloatOnlyKind):
    name = "cls_head"

    def build(self, model, layer, scales):
        ann = layer.annotations
        return ClsHead(dim=model.shape_of(layer.inputs[0])[1], classes=layer.op.classes, quant=ann.quant,
                       prune=ann.prune, scales=scales)

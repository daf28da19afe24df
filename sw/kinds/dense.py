"""dense: a fully connected layer, trained with fake quantization, pruning and its MAC core's twin."""

from __future__ import annotations

from cdsl.contract.ref.dense import DensePayload
from cdsl.dsl import ir
from cdsl.sw.registry import register
from cdsl.sw.weighted import WeightedKind


@register(ir.Dense)
class DenseKind(WeightedKind):
    def build(self, model, layer, scales):
        (k,) = model.shape_of(layer.inputs[0])
        return self.module(model, layer, scales, kind="dense", in_size=k, out_size=layer.op.units, bias=layer.op.bias)

    def export(self, module, layer, ctx):
        fields, out_type = super().export(module, layer, ctx)
        return DensePayload(**fields), out_type

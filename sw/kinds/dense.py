"""dense: a fully connected layer, trained with fake quantization, pruning and its MAC core's twin."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from cdsl.contract.ref.dense import DensePayload
from cdsl.dsl import ir
from cdsl.sw.layers import QWeighted
from cdsl.sw.registry import register
from cdsl.sw.weighted import WeightedKind


class QDense(QWeighted):
    def product(self, x, w, b):
        return F.linear(x, w, b)


@register(ir.Dense)
class DenseKind(WeightedKind):
    payload = DensePayload

    def build(self, model, layer, scales):
        (k,) = model.shape_of(layer.inputs[0])
        return self.module(QDense, model, layer, scales, nn.Linear(k, layer.op.units, bias=layer.op.bias))

    def export(self, module, layer, ctx):
        fields, out_type = super().export(module, layer, ctx)
        return DensePayload(**fields), out_type

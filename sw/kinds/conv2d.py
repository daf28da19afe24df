"""conv2d: a 2-D convolution, trained with fake quantization, pruning and its MAC core's twin."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from cdsl.contract.ref.conv2d import Conv2dPayload
from cdsl.dsl import ir
from cdsl.sw.layers import QWeighted
from cdsl.sw.registry import register
from cdsl.sw.weighted import WeightedKind


class QConv2d(QWeighted):
    def __init__(self, ref: nn.Conv2d, **kw):
        super().__init__(ref, **kw)
        self.stride, self.padding = ref.stride, ref.padding

    def product(self, x, w, b):
        return F.conv2d(x, w, b, stride=self.stride, padding=self.padding)


@register(ir.Conv2d)
class Conv2dKind(WeightedKind):
    payload = Conv2dPayload

    def build(self, model, layer, scales):
        op = layer.op
        c = model.shape_of(layer.inputs[0])[0]
        ref = nn.Conv2d(c, op.channels, op.kernel, stride=op.stride, padding=op.padding, bias=op.bias)
        return self.module(QConv2d, model, layer, scales, ref)

    def export(self, module, layer, ctx):
        fields, out_type = super().export(module, layer, ctx)
        op = layer.op
        return Conv2dPayload(**fields, kernel=op.kernel, stride=op.stride, padding=op.padding), out_type

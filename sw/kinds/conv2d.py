"""conv2d: a 2-D convolution, trained with fake quantization, pruning and its MAC core's twin."""

from __future__ import annotations

from cdsl.contract.ref.conv2d import Conv2dPayload
from cdsl.dsl import ir
from cdsl.sw.registry import register
from cdsl.sw.weighted import WeightedKind


@register(ir.Conv2d)
class Conv2dKind(WeightedKind):
    def build(self, model, layer, scales):
        op = layer.op
        c = model.shape_of(layer.inputs[0])[0]
        return self.module(model, layer, scales, kind="conv2d", in_size=c, out_size=op.channels, kernel=op.kernel,
                           stride=op.stride, padding=op.padding, bias=op.bias)

    def export(self, module, layer, ctx):
        fields, out_type = super().export(module, layer, ctx)
        op = layer.op
        return Conv2dPayload(**fields, kernel=op.kernel, stride=op.stride, padding=op.padding), out_type

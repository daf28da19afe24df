"""relu: max(x, 0) on whatever grid the input has."""

from __future__ import annotations

import torch

from cdsl.contract.ref.activation import ReluPayload
from cdsl.dsl import ir
from cdsl.sw.registry import LayerModule, SwKind, register


class Relu(LayerModule):
    def forward(self, xs, grids):
        return torch.relu(xs[0]), grids[0]


@register(ir.ReLU)
class ReluKind(SwKind):
    reads_nonnegative_only = True

    def payload_type(self, layer):
        return ReluPayload

    def build(self, model, layer, scales):
        return Relu()

    def export(self, module, layer, ctx):
        return ReluPayload(), ctx.in_types[0]

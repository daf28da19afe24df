"""flatten: (C, H, W) -> (C*H*W,), row-major; the grid is unchanged."""

from __future__ import annotations

from cdsl.contract.ref.flatten import FlattenPayload
from cdsl.dsl import ir
from cdsl.sw.registry import LayerModule, SwKind, register


class Flatten(LayerModule):
    def forward(self, xs, grids):
        return xs[0].flatten(1), grids[0]


@register(ir.Flatten)
class FlattenKind(SwKind):
    def payload_type(self, layer):
        return FlattenPayload

    def build(self, model, layer, scales):
        return Flatten()

    def export(self, module, layer, ctx):
        return FlattenPayload(), ctx.in_types[0]

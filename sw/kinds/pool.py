"""maxpool and avgpool. Average pooling on an integer grid runs exactly as the integer model does:
the integer window sum of codes, then `requantize` (the contract in cdsl.contract.ref.requant) with
(M, S) = avg_multiplier(kernel); its gradient is that of the plain average."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cdsl.contract.intmodel import Requant, round_half_up
from cdsl.contract.ref.pool import AvgPoolPayload, MaxPoolPayload, avg_multiplier
from cdsl.contract.ref.requant import requantize
from cdsl.dsl import ir
from cdsl.sw.layers import Grid
from cdsl.sw.registry import LayerModule, SwKind, register


class MaxPool(LayerModule):
    def __init__(self, op: ir.Pool):
        super().__init__()
        self.kernel, self.stride = op.kernel, op.stride

    def forward(self, xs, grids):
        return F.max_pool2d(xs[0], self.kernel, self.stride), grids[0]


class AvgPool(MaxPool):
    def forward(self, xs, grids):
        (x,), (grid,) = xs, grids
        avg = F.avg_pool2d(x, self.kernel, self.stride)
        if grid is None:
            return avg, None
        return _avg_on_grid(x, avg, grid, self.kernel, self.stride), grid


def _avg_on_grid(x: torch.Tensor, avg: torch.Tensor, grid: Grid, kernel: int, stride: int) -> torch.Tensor:
    m, s = avg_multiplier(kernel)
    with torch.no_grad():
        codes = round_half_up(x.double() / grid.scale.double())
        sums = F.avg_pool2d(codes, kernel, stride, divisor_override=1).to(torch.int64)  # exact: small ints
        value = requantize(sums, m, s, grid.qmin, grid.qmax).to(avg.dtype) * grid.scale
    return value + (avg - avg.detach())


@register(ir.Pool)
class PoolKind(SwKind):
    def payload_type(self, layer):
        return MaxPoolPayload if layer.op.kind is ir.PoolKind.MAX else AvgPoolPayload

    def build(self, model, layer, scales):
        return MaxPool(layer.op) if layer.op.kind is ir.PoolKind.MAX else AvgPool(layer.op)

    def export(self, module, layer, ctx):
        op = layer.op
        in_type = ctx.in_types[0]
        if op.kind is ir.PoolKind.MAX:
            return MaxPoolPayload(kernel=op.kernel, stride=op.stride), in_type
        m, s = avg_multiplier(op.kernel)
        rq = Requant(np.array([m], dtype=np.int64), np.array([s], dtype=np.int64), in_type.qmin, in_type.qmax)
        return AvgPoolPayload(kernel=op.kernel, stride=op.stride, requant=rq), in_type

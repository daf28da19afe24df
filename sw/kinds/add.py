"""add: the sum of two tensors, trained as the integer model computes it.

Without quantization the sum is the float sum. With quantization on and both inputs on integer
grids, the output's grid is an activation quantizer's (`@quant(a=...)` bits, else the wider
input's; signed when `@quant(signed=...)` says so or an input is signed, since a sum of
non-negative values is non-negative), and the value is exactly the integer contract
(`cdsl.contract.ref.add`) on the input codes, with the multipliers of the current scales; the
gradient is that of the plain sum (and the quantizer's, for a learned scale).
"""

from __future__ import annotations

import torch

from cdsl.contract.intmodel import QType, round_half_up
from cdsl.contract.ref.add import AddPayload, add, add_multipliers
from cdsl.dsl import ir
from cdsl.sw.layers import ActQuant, Compressible
from cdsl.sw.registry import ExportContext, LayerModule, SwKind, register


class Add(Compressible, LayerModule):
    def __init__(self, *, bits: int | None, signed: bool | None, scales):
        super().__init__()
        self.bits, self.signed = bits, signed
        # its format follows the input grids, known in the forward pass (set there each time)
        self.aq = ActQuant(bits=bits or 8, signed=bool(signed), mode=scales.act)

    def forward(self, xs, grids):
        a, b = xs
        total = a + b
        if not self.quant_on or None in grids:
            return total, None
        self.aq.set_format(bits=self.bits or max(g.bits for g in grids),
                           signed=self.signed if self.signed is not None else any(g.signed for g in grids))
        fq, grid = self.aq(total)
        ga, gb = grids
        ma, mb, shift = add_multipliers(float(ga.scale), float(gb.scale), float(grid.scale))
        with torch.no_grad():
            codes = [round_half_up(x.double() / g.scale.double()).to(torch.int64) for x, g in zip(xs, grids)]
            exact = add(*codes, mult_a=ma, mult_b=mb, shift=shift, qmin=grid.qmin, qmax=grid.qmax)
            value = exact.to(total.dtype) * grid.scale.detach()
        return value + (fq - fq.detach()), grid


@register(ir.Add)
class AddKind(SwKind):
    annotations = frozenset({"quant"})

    def payload_type(self, layer):
        return AddPayload

    def build(self, model, layer, scales):
        q = layer.annotations.quant
        return Add(bits=q.a if q is not None else None, signed=q.signed if q is not None else None, scales=scales)

    def export(self, module: Add, layer, ctx: ExportContext):
        grid = ctx.out_grid
        out_type = QType(grid.bits, grid.signed, float(grid.scale))
        ta, tb = ctx.in_types
        ma, mb, shift = add_multipliers(ta.scale, tb.scale, out_type.scale)
        return AddPayload(mult_a=ma, mult_b=mb, shift=shift, qmin=out_type.qmin, qmax=out_type.qmax), out_type

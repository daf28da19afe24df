"""patch_embed: patch projection, class token and positions; trained as the integer reference
computes it (`cdsl.contract.ref.patch_embed`; see `cdsl.sw.kinds._vit`)."""

from __future__ import annotations

import torch

from cdsl.contract.ref._vit import ACC_BOUND
from cdsl.contract.ref.patch_embed import PatchEmbedPayload, patch_embed
from cdsl.contract.intmodel import round_half_up
from cdsl.dsl import ir
from cdsl.sw.kinds._vit import VitKind, codes, int_linear, scale_of, straight_through
from cdsl.sw.layers import PatchEmbed
from cdsl.sw.registry import register


class IntPatchEmbed(PatchEmbed):
    def forward(self, xs, grids):
        y, grid = super().forward(xs, grids)
        if grid is None or grids[0] is None:
            return y, grid
        with torch.no_grad():
            p = self.payload(grids[0])
            y_int = patch_embed(codes(xs[0], grids[0]), p.patch, p.weight, p.bias, p.cls, p.pos, p.requant)
        return straight_through(y_int, grid, y), grid

    @torch.no_grad()
    def payload(self, in_grid) -> PatchEmbedPayload:
        s_in, s_out = float(in_grid.scale), scale_of(self.aq)
        lin = int_linear(self.proj, s_in, s_out, self.aq.qmin, self.aq.qmax)
        s_w = self.proj.wq.effective_scale(self.proj.masked_weight()).detach().double()
        unit = s_in * s_w.reshape(1, -1)  # [1, D] (per tensor or per channel)

        def acc(v):
            return round_half_up(v.detach().double() / unit).clamp(-ACC_BOUND, ACC_BOUND - 1).to(torch.int64)

        return PatchEmbedPayload(patch=self.patch, weight=lin.weight, bias=lin.bias,
                                 cls=acc(self.cls.reshape(1, -1))[0].numpy(), pos=acc(self.pos[0]).numpy(),
                                 requant=lin.requant)


@register(ir.PatchEmbed)
class PatchEmbedKind(VitKind):
    name = "patch_embed"

    def payload_type(self, layer):
        return PatchEmbedPayload

    def build(self, model, layer, scales):
        c, h, w = model.shape_of(layer.inputs[0])
        ann = layer.annotations
        return IntPatchEmbed(channels=c, size=(h, w), patch=layer.op.patch, dim=layer.op.dim, quant=ann.quant,
                             prune=ann.prune, scales=scales)

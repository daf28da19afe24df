"""cls_head: the class token's layer norm and a linear layer; trained as the integer reference
computes it (`cdsl.contract.ref.cls_head`; see `cdsl.sw.kinds._vit`)."""

from __future__ import annotations

import torch

from cdsl.contract.ref.cls_head import ClsHeadPayload, cls_head
from cdsl.dsl import ir
from cdsl.sw.kinds._vit import VitKind, codes, int_linear, int_norm, scale_of, straight_through
from cdsl.sw.layers import ActQuant, ClsHead
from cdsl.sw.registry import register


class IntClsHead(ClsHead):
    def __init__(self, *, dim, classes, quant, prune, scales):
        super().__init__(dim=dim, classes=classes, quant=quant, prune=prune, scales=scales)
        self.a_norm = ActQuant(bits=quant.a, signed=True, mode=scales.act) if self.aq is not None else None

    def forward(self, xs, grids):
        if not (self.quant_on and self.aq is not None and grids[0] is not None):
            return super().forward(xs, grids)
        (x,) = xs
        h, _ = self.a_norm(self.ln(x[:, 0]))
        y, grid = self.aq(self.fc(h))
        with torch.no_grad():
            y_int = cls_head(self.payload(grids[0]), codes(x, grids[0]))
        return straight_through(y_int, grid, y), grid

    @torch.no_grad()
    def payload(self, in_grid) -> ClsHeadPayload:
        s_h = scale_of(self.a_norm)
        return ClsHeadPayload(norm=int_norm(self.ln, s_h, self.a_norm.qmin, self.a_norm.qmax),
                              fc=int_linear(self.fc, s_h, scale_of(self.aq), self.aq.qmin, self.aq.qmax))


@register(ir.ClsHead)
class ClsHeadKind(VitKind):
    name = "cls_head"
    norms_input = True
    reads_class_token_only = True

    def payload_type(self, layer):
        return ClsHeadPayload

    def build(self, model, layer, scales):
        ann = layer.annotations
        return IntClsHead(dim=model.shape_of(layer.inputs[0])[1], classes=layer.op.classes, quant=ann.quant,
                          prune=ann.prune, scales=scales)

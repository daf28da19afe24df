"""sign: +1 where x >= 0, -1 elsewhere (hardtanh straight-through gradient); a 2-bit signed output."""

from __future__ import annotations

import torch

from cdsl.contract.intmodel import QType
from cdsl.contract.ref.activation import SignPayload
from cdsl.dsl import ir
from cdsl.sw.layers import Grid, SignSTE
from cdsl.sw.registry import LayerModule, SwKind, register

SIGN_TYPE = QType(2, True, 1.0)


class Sign(LayerModule):
    def forward(self, xs, grids):
        return SignSTE.apply(xs[0]), Grid(torch.tensor(SIGN_TYPE.scale), SIGN_TYPE.bits, SIGN_TYPE.signed)


@register(ir.Sign)
class SignKind(SwKind):
    reads_sign_only = True

    def payload_type(self, layer):
        return SignPayload

    def build(self, model, layer, scales):
        return Sign()

    def export(self, module, layer, ctx):
        return SignPayload(), SIGN_TYPE

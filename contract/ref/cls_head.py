"""Integer reference of `cls_head(x, classes=K)`: the class token's I-LayerNorm, then an integer
linear layer requantized onto the output type (8-bit logits):

    y = fc(norm(x[0]))
"""

from __future__ import annotations

from dataclasses import dataclass

from cdsl.contract import codec
from cdsl.contract.intmodel import Payload
from cdsl.contract.ref import _checks as c
from cdsl.contract.ref._tensor import as_int64
from cdsl.contract.ref._vit import BitserialMapping, IntLinear, IntNorm


@codec.serializable("cls_head")
@dataclass(frozen=True, eq=False)
class ClsHeadPayload(Payload, BitserialMapping):
    norm: IntNorm
    fc: IntLinear

    def check(self, layer):
        (shape,) = layer.in_shapes
        _, d = shape
        (k,) = layer.out_shape
        self.norm.check("payload.norm", d)
        self.fc.check("payload.fc", d, k)
        self.check_lanes(d)
        if (self.fc.requant.qmin, self.fc.requant.qmax) != (layer.out_type.qmin, layer.out_type.qmax):
            raise ValueError("payload.fc.requant: expected qmin, qmax of the output type")

    def run(self, layer, inputs, settings):
        (x,) = inputs
        return cls_head(self, x)


def cls_head(p: ClsHeadPayload, x):
    x = as_int64(x, what="cls_head input")
    return p.fc(p.norm(x[:, 0]))

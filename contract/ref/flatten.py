"""Flatten: (C, H, W) -> (C*H*W,) in row-major order, which is also the order of every stream."""

from __future__ import annotations

from dataclasses import dataclass

from cdsl.contract import codec
from cdsl.contract.intmodel import Payload


@codec.serializable("flatten")
@dataclass(frozen=True, eq=False)
class FlattenPayload(Payload):
    """No arithmetic: a reshape to [B, product of the input shape]."""

    def check(self, layer):
        import math

        from cdsl.contract.ref import _checks as c

        in_shape, in_type = c.one_input(layer)
        c.same_shape(layer, (math.prod(in_shape),))
        c.same_type(layer, in_type)

    def run(self, layer, inputs, settings):
        (x,) = inputs
        return x.reshape(x.shape[0], -1)

"""Integer references of the elementwise activations."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cdsl.contract import codec
from cdsl.contract.intmodel import Payload
from cdsl.contract.ref._tensor import as_int64, like_input


def relu(x):
    """max(x, 0), elementwise, int64."""
    xt = as_int64(x, what="relu input")
    return like_input(xt.clamp(min=0), x)


def sign(x):
    """+1 where x >= 0, -1 where x < 0 (zero maps to +1), int64."""
    xt = as_int64(x, what="sign input")
    return like_input(torch.where(xt >= 0, 1, -1).to(torch.int64), x)


@codec.serializable("relu")
@dataclass(frozen=True, eq=False)
class ReluPayload(Payload):
    """max(x, 0). After a layer whose output type is unsigned it is the identity."""

    def check(self, layer):
        from cdsl.contract.ref import _checks as c

        in_shape, in_type = c.one_input(layer)
        c.same_shape(layer, in_shape)
        if layer.out_type.qmax < min(in_type.qmax, 1) or layer.out_type.qmin > 0:
            raise ValueError("out_type: expected a type holding max(x, 0) of the input")

    def run(self, layer, inputs, settings):
        (x,) = inputs
        return relu(x)


@codec.serializable("sign")
@dataclass(frozen=True, eq=False)
class SignPayload(Payload):
    """+1 where x >= 0, -1 elsewhere; the output type is 2-bit signed with scale 1."""

    def check(self, layer):
        from cdsl.contract.ref import _checks as c

        in_shape, _ = c.one_input(layer)
        c.same_shape(layer, in_shape)
        if (layer.out_type.qmin, layer.out_type.qmax) != (-2, 1):
            raise ValueError("out_type: expected 2 bits, signed (values -1 and +1)")

    def run(self, layer, inputs, settings):
        (x,) = inputs
        return sign(x)

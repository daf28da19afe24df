"""Integer reference of `patch_embed(x, patch=P, dim=D)`: (C, H, W) codes -> (N + 1, D) 8-bit tokens.

Each P x P patch (flattened channel-major, as the training module does) goes through one integer
linear map; the class token and the positions are integers in the same accumulator units
(input scale * weight scale), added before the one requantization:

    acc[0]   = cls + pos[0]
    acc[1+i] = patch_i @ weight.T + bias + pos[1+i]
    y        = requantize(acc, M, S, qmin, qmax)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cdsl.contract import codec
from cdsl.contract.intmodel import Payload, Requant
from cdsl.contract.ref import _checks as c
from cdsl.contract.ref._tensor import as_int64
from cdsl.contract.ref._vit import ACC_BOUND, BitserialMapping, IntLinear
from cdsl.contract.ref.dense import dense


def patches(x: torch.Tensor, patch: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, (H/P)*(W/P), C*P*P], patches in row-major order, each channel-major."""
    b, ch, h, w = x.shape
    p = patch
    return x.reshape(b, ch, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(b, -1, ch * p * p)


def patch_embed(x, patch: int, weight, bias, cls, pos, requant: Requant) -> torch.Tensor:
    xt = as_int64(x, what="patch_embed input")
    acc = dense(patches(xt, patch), weight, bias)
    first = torch.from_numpy(np.asarray(cls, dtype=np.int64)).expand(xt.shape[0], 1, -1)
    acc = torch.cat([first, acc], dim=1) + torch.from_numpy(np.asarray(pos, dtype=np.int64))
    return requant.apply(acc, channel_dim=-1)


@codec.serializable("patch_embed")
@dataclass(frozen=True, eq=False)
class PatchEmbedPayload(Payload, BitserialMapping):
    """Patch projection, class token and positions, requantized to the output type."""

    patch: int
    weight: np.ndarray  # int64 [D, C*P*P]
    bias: np.ndarray  # int64 [D], accumulator units
    cls: np.ndarray  # int64 [D], accumulator units
    pos: np.ndarray  # int64 [N+1, D], accumulator units
    requant: Requant

    def check(self, layer):
        (shape,) = layer.in_shapes
        ch, h, w = shape
        n1, d = layer.out_shape
        c.at_least(self.patch, "payload.patch", 1, min(h, w))
        k = ch * self.patch * self.patch
        IntLinear(self.weight, self.bias, self.requant).check("payload", k, d)
        self.check_lanes(k)
        c.int_array(self.cls, "payload.cls", shape=(d,), lo=-ACC_BOUND, hi=ACC_BOUND - 1)
        c.int_array(self.pos, "payload.pos", shape=(n1, d), lo=-ACC_BOUND, hi=ACC_BOUND - 1)

    def run(self, layer, inputs, settings):
        (x,) = inputs
        return patch_embed(x, self.patch, self.weight, self.bias, self.cls, self.pos, self.requant)

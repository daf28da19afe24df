"""patch_embed: the image [C, H, W] -> tokens [Np + 1, D] (`cdsl.contract.ref.patch_embed`), planned as
two engines (`cdsl.hw.plan` sub-graph):

    t.patches  (PatchifyNode)     a zero token, then the Np patches in row-major order, each channel-major
    t          (TokenLinearNode)  one linear map per token with a per-token table in place of the bias:
                                  table[0] = cls + pos[0], table[1 + i] = bias + pos[1 + i]

The zero token's dot product is 0, so token 0 is requant(cls + pos[0]), the class token, exactly as
the reference adds it in accumulator units before its one requantization."""

from __future__ import annotations

import numpy as np

from cdsl.contract.ref._vit import IntLinear
from cdsl.contract.ref.patch_embed import PatchEmbedPayload
from cdsl.hw.kinds._vit import layer_type, linear_lanes
from cdsl.hw.registry import register


@register(PatchEmbedPayload)
def plan_patch_embed(layer, ctx):
    from cdsl.hw.kinds.patchify import embed_table, plan_patchify
    from cdsl.hw.kinds.token_linear import plan_token_linear

    pay: PatchEmbedPayload = layer.payload
    (src,), (src_type,) = ctx.in_streams, ctx.in_types
    patches = plan_patchify(f"{layer.name}.patches", src, src_type, pay.patch)
    linear = IntLinear(np.asarray(pay.weight, dtype=np.int64), np.asarray(pay.bias, dtype=np.int64), pay.requant)
    out = plan_token_linear(layer.name, patches.name, patches.out_type, linear, out_type=layer_type(layer),
                            table=embed_table(pay.cls, pay.bias, pay.pos),
                            **linear_lanes(layer, ctx, patches.out_type.shape[-1], linear))
    return patches, out

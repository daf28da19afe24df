"""cls_head: the class token's I-LayerNorm, then a linear layer (`cdsl.contract.ref.cls_head`), planned
as three engines (`cdsl.hw.plan` sub-graph):

    y.cls   (FirstTokenNode)   token 0 of a frame of any length: [1, D]
    y.norm  (LayerNormNode)    I-LayerNorm of that token
    y       (TokenLinearNode)  the linear layer on one token: the logits [K]"""

from __future__ import annotations

from cdsl.contract.ref.cls_head import ClsHeadPayload
from cdsl.hw.kinds._vit import layer_type, linear_lanes, requant_type
from cdsl.hw.registry import register


@register(ClsHeadPayload)
def plan_cls_head(layer, ctx):
    from cdsl.hw.kinds.first_token import plan_first_token
    from cdsl.hw.kinds.layernorm import plan_layernorm
    from cdsl.hw.kinds.token_linear import plan_token_linear

    pay: ClsHeadPayload = layer.payload
    (src,), (src_type,) = ctx.in_streams, ctx.in_types
    d = src_type.shape[-1]
    first = plan_first_token(f"{layer.name}.cls", src, src_type)
    norm = plan_layernorm(f"{layer.name}.norm", first.name, first.out_type, pay.norm,
                          out_type=requant_type(pay.norm.requant, (1, d)))
    out = plan_token_linear(layer.name, norm.name, norm.out_type, pay.fc, out_type=layer_type(layer),
                            **linear_lanes(layer, ctx, d, pay.fc))
    return first, norm, out

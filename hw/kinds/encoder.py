"""encoder: a pre-norm transformer block (`cdsl.contract.ref.encoder.block`) planned as a sub-graph of
engines, each its own node (`cdsl.hw.plan`: names `<layer>.<part>`, the last one `<layer>`):

    [e.select] -> e.norm1 -> e.qkv -> e.attn -> e.proj -> e.add1 (x + proj) -> e.norm2 -> e.fc1
               -> e.gelu -> e.fc2 -> e (e.add1 + fc2)

`e.select` (a `TokenSelectorNode`) is there when the payload holds a selector; its output is then the
block's x, and the token count of every stream after it varies per inference. Each intermediate's
stream type follows its requantization's (qmin, qmax). The residual joins are `AddNode`s; the plan
puts their input FIFOs in (a join), sized for one frame each."""

from __future__ import annotations

from dataclasses import dataclass

from cdsl.contract.ref.encoder import EncoderPayload
from cdsl.hw.plan import StreamType
from cdsl.hw.kinds._vit import layer_type, linear_lanes, requant_type
from cdsl.hw.kinds.add import AddNode
from cdsl.hw.registry import register


def _add(name: str, a, b, pay, out_type) -> AddNode:
    return AddNode(name=name, inputs=(a.name, b.name), in_types=(a.out_type, b.out_type), out_type=out_type,
                   mult_a=pay.mult_a, mult_b=pay.mult_b, shift=pay.shift, qmin=pay.qmin, qmax=pay.qmax)


@dataclass(frozen=True)
class _Stream:
    """The layer's input as the sub-graph reads it: a name and a type, as a node's output has."""

    name: str
    out_type: StreamType


@register(EncoderPayload)
def plan_encoder(layer, ctx):
    from cdsl.hw.kinds.attention import plan_attention
    from cdsl.hw.kinds.gelu import plan_gelu
    from cdsl.hw.kinds.layernorm import plan_layernorm
    from cdsl.hw.kinds.token_linear import plan_token_linear
    from cdsl.hw.kinds.token_selector import plan_token_selector

    p: EncoderPayload = layer.payload
    e = layer.name
    (x,) = (_Stream(s, t) for s, t in zip(ctx.in_streams, ctx.in_types))
    n, d = x.out_type.shape
    m = p.fc1.weight.shape[0]
    nodes = []

    def add(node):
        nodes.append(node)
        return node

    if p.selector is not None:
        x = add(plan_token_selector(p.selector, name=f"{e}.select", input=x.name, in_type=x.out_type))

    def norm(part, src, norm):
        return add(plan_layernorm(f"{e}.{part}", src.name, src.out_type, norm,
                                  out_type=requant_type(norm.requant, (n, d))))

    def linear(part, src, lin, fan_out, name=None):
        return add(plan_token_linear(name or f"{e}.{part}", src.name, src.out_type, lin,
                                     out_type=requant_type(lin.requant, (n, fan_out)),
                                     **linear_lanes(layer, ctx, src.out_type.shape[-1], lin)))

    h = norm("norm1", x, p.norm1)
    qkv = linear("qkv", h, p.qkv, 3 * d)
    att = add(plan_attention(f"{e}.attn", qkv.name, qkv.out_type, heads=p.heads, x0=p.softmax_x0, attn=p.attn,
                             out_type=requant_type(p.attn, (n, d))))
    proj = linear("proj", att, p.proj, d)
    x1 = add(_add(f"{e}.add1", x, proj, p.add1, requant_type(p.add1, (n, d))))
    h2 = norm("norm2", x1, p.norm2)
    f = linear("fc1", h2, p.fc1, m)
    g = add(plan_gelu(f"{e}.gelu", f.name, f.out_type, cut=p.gelu_cut, c=p.gelu_c, requant=p.gelu,
                      out_type=requant_type(p.gelu, (n, m))))
    f2 = linear("fc2", g, p.fc2, d)
    add(_add(e, x1, f2, p.add2, layer_type(layer)))
    return tuple(nodes)

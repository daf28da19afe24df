"""encoder: a pre-norm transformer block; trained as the integer reference computes it
(`cdsl.contract.ref.encoder`; see `cdsl.sw.kinds._vit`)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cdsl.contract.ref.add import AddPayload, add_multipliers
from cdsl.contract.ref.encoder import EncoderPayload, encoder
from cdsl.contract.ref.int_gelu import gelu_constants, gelu_scale
from cdsl.contract.ref.int_softmax import OUT_BITS, shiftmax_x0
from cdsl.dsl import ir
from cdsl.sw.kinds._vit import VitKind, codes, int_linear, int_norm, requant, scale_of, straight_through
from cdsl.sw.layers import ActQuant, EncoderBlock
from cdsl.sw.registry import register

# the grids the integer block requantizes onto, in order (each an 8-bit activation quantizer)
POINTS = ("norm1", "q", "k", "v", "attn", "proj", "add1", "norm2", "fc1", "gelu", "fc2")


class IntEncoder(EncoderBlock):
    def __init__(self, *, dim, heads, mlp, quant, prune, scales):
        super().__init__(dim=dim, heads=heads, mlp=mlp, quant=quant, prune=prune, scales=scales)
        if self.aq is not None:
            self.points = torch.nn.ModuleDict(
                {n: ActQuant(bits=quant.a, signed=True, mode=scales.act) for n in POINTS})

    def forward(self, xs, grids):
        if not (self.quant_on and self.aq is not None and grids[0] is not None):
            return super().forward(xs, grids)
        y, grid = self.surrogate(xs[0])
        with torch.no_grad():
            y_int = encoder(self.payload(grids[0]), codes(xs[0], grids[0]))
        return straight_through(y_int, grid, y), grid

    def surrogate(self, x):
        """The float block with fake quantization at every point the integer block requantizes."""
        a = {n: (lambda v, n=n: self.points[n](v)[0]) for n in POINTS}
        b, n, d = x.shape
        hd = d // self.heads
        qkv = self.qkv(a["norm1"](self.ln1(x)))
        q, k, v = (a[name](qkv[..., i * d:(i + 1) * d]).reshape(b, n, self.heads, hd).transpose(1, 2)
                   for i, name in enumerate(("q", "k", "v")))
        att = torch.softmax((q @ k.transpose(-2, -1)) / math.sqrt(hd), dim=-1)
        o = a["attn"]((att @ v).transpose(1, 2).reshape(b, n, d))
        x1 = a["add1"](x + a["proj"](self.proj(o)))
        g = a["gelu"](F.gelu(a["fc1"](self.fc1(a["norm2"](self.ln2(x1))))))
        return self.aq(x1 + a["fc2"](self.fc2(g)))

    @torch.no_grad()
    def payload(self, in_grid) -> EncoderPayload:
        s = {n: scale_of(self.points[n]) for n in POINTS}
        s_x, s_y = float(in_grid.scale), scale_of(self.aq)
        lo, hi = self.aq.qmin, self.aq.qmax
        d = self.ln1.weight.shape[0]
        hd = d // self.heads
        qkv_out = [s["q"]] * d + [s["k"]] * d + [s["v"]] * d
        cut, c = gelu_constants(s["fc1"])
        add1 = add_multipliers(s_x, s["proj"], s["add1"])
        add2 = add_multipliers(s["add1"], s["fc2"], s_y)
        return EncoderPayload(
            heads=self.heads,
            norm1=int_norm(self.ln1, s["norm1"], lo, hi),
            qkv=int_linear(self.qkv, s["norm1"], qkv_out, lo, hi),
            softmax_x0=shiftmax_x0(s["q"] * s["k"] / math.sqrt(hd)),
            attn=requant(2.0 ** -OUT_BITS * s["v"] / s["attn"], lo, hi),
            proj=int_linear(self.proj, s["attn"], s["proj"], lo, hi),
            add1=AddPayload(*add1, qmin=lo, qmax=hi),
            norm2=int_norm(self.ln2, s["norm2"], lo, hi),
            fc1=int_linear(self.fc1, s["norm2"], s["fc1"], lo, hi),
            gelu_cut=cut, gelu_c=c,
            gelu=requant(gelu_scale(s["fc1"], c) / s["gelu"], lo, hi),
            fc2=int_linear(self.fc2, s["gelu"], s["fc2"], lo, hi),
            add2=AddPayload(*add2, qmin=lo, qmax=hi),
        )


@register(ir.Encoder)
class EncoderKind(VitKind):
    name = "encoder"

    def payload_type(self, layer):
        return EncoderPayload

    def build(self, model, layer, scales):
        ann = layer.annotations
        return IntEncoder(dim=model.shape_of(layer.inputs[0])[1], heads=layer.op.heads, mlp=layer.op.mlp,
                          quant=ann.quant, prune=ann.prune, scales=scales)

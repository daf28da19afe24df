"""encoder: a pre-norm transformer block; trained as the integer reference computes it
(`cdsl.contract.ref.encoder`; see `cdsl.sw.kinds._vit`), with an optional `@tokens` selector in front
(`cdsl.sw.kinds._token_selector`). A selector's output has a token count that varies per sample,
which only the class token's reader copes with so far: an `@tokens` encoder must feed cls_head layers
only (refused otherwise, at the annotation)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cdsl.contract.ref.add import AddPayload, add_multipliers
from cdsl.contract.ref.encoder import EncoderPayload, encoder
from cdsl.contract.ref.int_gelu import gelu_constants, gelu_scale
from cdsl.contract.ref.int_softmax import OUT_BITS, shiftmax_x0
from cdsl.dsl import ir
from cdsl.errors import CdslError
from cdsl.sw.kinds._token_selector import SelectorTwin
from cdsl.sw.kinds._vit import VitKind, codes, int_linear, int_norm, requant, scale_of, straight_through
from cdsl.sw.layers import ActQuant, EncoderBlock
from cdsl.sw.registry import register, sw_kind

# the grids the integer block requantizes onto, in order (each an 8-bit activation quantizer)
POINTS = ("norm1", "q", "k", "v", "attn", "proj", "add1", "norm2", "fc1", "gelu", "fc2")


class IntEncoder(EncoderBlock):
    def __init__(self, *, dim, heads, mlp, quant, prune, scales, tokens=None):
        super().__init__(dim=dim, heads=heads, mlp=mlp, quant=quant, prune=prune, scales=scales)
        if self.aq is not None:
            self.points = torch.nn.ModuleDict(
                {n: ActQuant(bits=quant.a, signed=True, mode=scales.act) for n in POINTS})
        self.selector = None
        self._sampled: torch.Tensor | None = None  # the surrogate's last sampled keep decisions [B, N]
        if tokens is not None and quant is not None and quant.w is not None:
            self.selector = SelectorTwin(dim=dim, heads=tokens.heads, keep=tokens.keep, w_bits=quant.w,
                                         act_mode=scales.act)

    @property
    def selecting(self) -> bool:
        return self.selector is not None and "tokens" in self.active

    def forward(self, xs, grids):
        if not (self.quant_on and self.aq is not None and grids[0] is not None):
            return super().forward(xs, grids)
        payload = self.payload(grids[0])
        x_int = codes(xs[0], grids[0])
        threshold = payload.selector.threshold if payload.selector is not None else 0
        y, grid = self.surrogate(xs[0], threshold)
        keep = None
        with torch.no_grad():
            if payload.selector is not None and self.training:
                self.selector.observe(payload.selector.scores(x_int))
                # the forward value keeps the tokens the surrogate's sampled policy kept, so that the
                # value and the gradient are about the same tokens (the threshold decides at inference)
                keep = self._sampled > 0.5
            y_int = encoder(payload, x_int, keep)
        return straight_through(y_int, grid, y), grid

    def surrogate(self, x, threshold: int = 0):
        """The float block with fake quantization at every point the integer block requantizes; with
        the selector on, dropped keys masked out of attention and the package token appended (its
        output row dropped again: the output has the input's N rows, the class token first)."""
        a = {n: (lambda v, n=n: self.points[n](v)[0]) for n in POINTS}
        n_in = x.shape[1]
        policy = None
        if self.selecting:
            mask, score = self.selector.policy(x, threshold)
            self._sampled = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1).detach()
            w = (1 - mask) * score
            package = (w[..., None] * x[:, 1:]).sum(dim=1) / (w.sum(dim=1, keepdim=True) + 1e-6)
            x = torch.cat([x, package[:, None]], dim=1)
            ones = torch.ones_like(mask[:, :1])
            policy = torch.cat([ones, mask, (1 - mask).max(dim=1, keepdim=True).values], dim=1)
        b, n, d = x.shape
        hd = d // self.heads
        qkv = self.qkv(a["norm1"](self.ln1(x)))
        q, k, v = (a[name](qkv[..., i * d:(i + 1) * d]).reshape(b, n, self.heads, hd).transpose(1, 2)
                   for i, name in enumerate(("q", "k", "v")))
        att = attend((q @ k.transpose(-2, -1)) / math.sqrt(hd), policy)
        o = a["attn"]((att @ v).transpose(1, 2).reshape(b, n, d))
        x1 = a["add1"](x + a["proj"](self.proj(o)))
        g = a["gelu"](F.gelu(a["fc1"](self.fc1(a["norm2"](self.ln2(x1))))))
        y, grid = self.aq(x1 + a["fc2"](self.fc2(g)))
        return y[:, :n_in], grid

    def regularizer(self):
        return self.selector.regularizer() if self.selecting else None

    def epoch_note(self) -> str | None:
        """The keep ratios the selector ran at this epoch: sampled while training, thresholded on the test split."""
        if not self.selecting:
            return None
        train, test = self.selector.take_keep_ratios()
        if train is None:
            return None
        return f"keep {train:.2f}" + (f" (test {test:.2f})" if test is not None else "")

    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        super().start_epoch(epoch, total_epochs)
        if self.selecting:
            self.selector.start_epoch(epoch, total_epochs)

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
            selector=self.selector.export(s_x) if self.selecting and bool(self.selector.trained) else None,
        )


def attend(scores: torch.Tensor, policy: torch.Tensor | None) -> torch.Tensor:
    """Softmax over keys; with a keep policy [B, N] (DynamicViT's softmax with policy), dropped keys
    get no weight except on their own row."""
    if policy is None:
        return torch.softmax(scores, dim=-1)
    n = scores.shape[-1]
    pol = policy[:, None, None, :]
    pol = pol + (1 - pol) * torch.eye(n, dtype=scores.dtype)
    e = torch.exp(scores - scores.max(dim=-1, keepdim=True).values) * pol
    return (e + 1e-6 / n) / (e.sum(dim=-1, keepdim=True) + 1e-6)


@register(ir.Encoder)
class EncoderKind(VitKind):
    name = "encoder"
    annotations = VitKind.annotations | {"tokens"}

    def problems(self, model, layer):
        out = super().problems(model, layer)
        tokens = layer.annotations.tokens
        if tokens is not None:
            q = layer.annotations.quant
            if q is None or q.w is None:
                out.append(("train", CdslError(f"@tokens on layer {layer.name!r} needs @quant(w=...) (the selector's "
                                               "weights take its bits)", span=tokens.span)))
            for reader in model.layers:
                if layer.name in reader.inputs and not sw_kind(reader.op).reads_class_token_only:
                    out.append(("train", CdslError(
                        f"the tokens of layer {layer.name!r} vary in number per sample after @tokens; "
                        f"layer {reader.name!r} cannot read them (only cls_head can, so far)", span=tokens.span)))
        return out

    def export(self, module, layer, ctx):
        if module.selector is not None and not bool(module.selector.trained):
            raise CdslError(f"the @tokens selector of layer {layer.name!r} was never trained (no training stage "
                            "activates tokens)", span=layer.annotations.tokens.span)
        return super().export(module, layer, ctx)

    def payload_type(self, layer):
        return EncoderPayload

    def build(self, model, layer, scales):
        ann = layer.annotations
        return IntEncoder(dim=model.shape_of(layer.inputs[0])[1], heads=layer.op.heads, mlp=layer.op.mlp,
                          quant=ann.quant, prune=ann.prune, scales=scales, tokens=ann.tokens)

"""encoder: a pre-norm transformer block; trained as the integer reference computes it
(`cdsl.contract.ref.encoder`; see `cdsl.sw.kinds._vit`), with an optional `@tokens` selector in front
(`cdsl.sw.kinds._token_selector`). A selector's output has a token count that varies per sample: it
may feed cls_head layers (they read the class token only) and encoders, with or without a selector of
their own (progressive pruning, as DynamicViT and HeatViT prune at several depths); any other reader
is refused at the annotation.

Progressive pruning in training: the forward value is the integer model's, whose token streams are
compacted (each sample's tokens first, zero rows after them) and carry their counts (`Grid.tokens`).
The float surrogate (the gradient path) is reordered the same way (`_compact`), so that the rows of
value and gradient are the same tokens, and a later encoder's surrogate masks the padding rows out of
attention as keys (DynamicViT's attention with a keep policy: the earlier selectors' decisions reach
every later block), its selector neither keeps nor folds them and its global feature ignores them."""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from cdsl.contract.ref.add import AddPayload, add_multipliers
from cdsl.contract.ref.encoder import EncoderPayload, encode
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
        n_in = grids[0].tokens
        threshold = payload.selector.threshold if payload.selector is not None else 0
        valid = None if n_in is None else torch.arange(x_int.shape[1])[None, :] < n_in[:, None]
        y, grid = self.surrogate(xs[0], threshold, valid)
        keep = None
        with torch.no_grad():
            if payload.selector is not None and self.training:
                # the forward value keeps the tokens the surrogate's sampled policy kept, so that the
                # value and the gradient are about the same tokens (the threshold decides at inference)
                keep = self._sampled > 0.5
            run = encode(payload, x_int, keep, n_in)
            if payload.selector is not None and self.training:
                self.selector.observe(torch.cat([s.scores[1:] for s in run.selections]))
        # the surrogate's rows as the integer output's (the selector's first step, before it is
        # trained, selects nothing in integers: the package row is dropped)
        y = y[:, : x_int.shape[1]] if run.lengths is None else _compact(y, run, x_int.shape[1])
        return straight_through(run.out, grid, y), dataclasses.replace(grid, tokens=run.lengths)

    def surrogate(self, x, threshold: int = 0, valid=None):
        """The float block with fake quantization at every point the integer block requantizes; with
        the selector on, dropped keys masked out of attention and the package token appended as row N
        (the output has N + 1 rows then); `valid` (bool [B, N]): the rows each sample holds (behind
        an earlier selector), the others masked out of attention as keys and never selected."""
        a = {n: (lambda v, n=n: self.points[n](v)[0]) for n in POINTS}
        policy = None if valid is None else valid.to(x.dtype)
        if self.selecting:
            cand = None if valid is None else valid[:, 1:]
            mask, score = self.selector.policy(x, threshold, cand)
            self._sampled = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1).detach()
            dropped = 1 - mask if cand is None else (1 - mask) * cand.to(x.dtype)
            w = dropped * score
            package = (w[..., None] * x[:, 1:]).sum(dim=1) / (w.sum(dim=1, keepdim=True) + 1e-6)
            x = torch.cat([x, package[:, None]], dim=1)
            ones = torch.ones_like(mask[:, :1])
            policy = torch.cat([ones, mask, dropped.max(dim=1, keepdim=True).values], dim=1)
        b, n, d = x.shape
        hd = d // self.heads
        qkv = self.qkv(a["norm1"](self.ln1(x)))
        q, k, v = (a[name](qkv[..., i * d:(i + 1) * d]).reshape(b, n, self.heads, hd).transpose(1, 2)
                   for i, name in enumerate(("q", "k", "v")))
        att = attend((q @ k.transpose(-2, -1)) / math.sqrt(hd), policy)
        o = a["attn"]((att @ v).transpose(1, 2).reshape(b, n, d))
        x1 = a["add1"](x + a["proj"](self.proj(o)))
        g = a["gelu"](F.gelu(a["fc1"](self.fc1(a["norm2"](self.ln2(x1))))))
        return self.aq(x1 + a["fc2"](self.fc2(g)))

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


def _compact(y: torch.Tensor, run, n: int) -> torch.Tensor:
    """The surrogate's rows [B, N (+1: the package row), D] in the integer output's order: per sample
    the kept tokens in order, the package row when one was folded, zero rows after them (N rows)."""
    b = y.shape[0]
    index = torch.zeros(b, n, dtype=torch.int64)
    for i in range(b):
        if run.selections is None:
            rows = torch.arange(int(run.lengths[i]))
        else:
            s = run.selections[i]
            rows = torch.nonzero(s.keep).flatten()
            if s.package is not None:
                rows = torch.cat([rows, torch.tensor([n])])
        index[i, : len(rows)] = rows
    held = (torch.arange(n)[None, :] < run.lengths[:, None]).to(y.dtype)[..., None]
    return torch.gather(y, 1, index[..., None].expand(b, n, y.shape[2])) * held


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


def _pruned_by(model, layer):
    """The nearest `@tokens` encoder at or before `layer` along encoders (whose selector makes the
    token count of `layer`'s output vary), or None."""
    while isinstance(layer.op, ir.Encoder):
        if layer.annotations.tokens is not None:
            return layer
        src = layer.inputs[0]
        if src not in {lay.name for lay in model.layers}:
            return None
        layer = model.layer(src)
    return None


@register(ir.Encoder)
class EncoderKind(VitKind):
    name = "encoder"
    norms_input = True
    norms_grid = True
    annotations = VitKind.annotations | {"tokens"}
    reads_token_counts = True
    learned_in_stage = frozenset({"tokens"})

    def problems(self, model, layer):
        out = super().problems(model, layer)
        tokens = layer.annotations.tokens
        if tokens is not None:
            q = layer.annotations.quant
            if q is None or q.w is None:
                out.append(("train", CdslError(f"@tokens on layer {layer.name!r} needs @quant(w=...) (the selector's "
                                               "weights take its bits)", span=tokens.span)))
        pruned = _pruned_by(model, layer)
        if pruned is not None:
            for reader in model.layers:
                kind = sw_kind(reader.op)
                if layer.name in reader.inputs and not (kind.reads_class_token_only or kind.reads_token_counts):
                    out.append(("train", CdslError(
                        f"the tokens of layer {layer.name!r} vary in number per sample after @tokens on "
                        f"{pruned.name!r}; layer {reader.name!r} cannot read them (only encoder and cls_head can)",
                        span=pruned.annotations.tokens.span)))
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

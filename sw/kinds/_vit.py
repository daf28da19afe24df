"""Shared by the ViT kinds (patch_embed, encoder, cls_head): their training twins and exports.

With quantization on, a ViT module's forward value is the integer reference itself: the module
builds its payload from its current weights and scales (`payload(in_grid)`, the same function
export calls), runs the payload's integer step on the input codes, and returns those integers
times the output scale. The gradient is that of a fake-quant float surrogate computed alongside
(float layer norm, softmax and GELU, fake-quantized weights, an activation quantizer at every
point the integer block requantizes, which is also where those grids' scales are observed):
value = integer result, gradient = surrogate's (straight through). So the fake-quant network and
the golden model agree exactly, by construction (tests/sw/test_vit.py holds them equal).
"""

from __future__ import annotations

import dataclasses
import numpy as np
import torch
from torch import nn

from cdsl.contract.intmodel import QType, Requant, round_half_up
from cdsl.contract.ref._vit import ACC_BOUND, IntLinear, IntNorm
from cdsl.contract.ref.int_layernorm import FRAC_BITS, INPUT_BITS, MAX_DIM
from cdsl.contract.ref.requant import quantize_multiplier
from cdsl.errors import CdslError
from cdsl.sw.layers import ActQuant, Grid, QLinear
from cdsl.sw.registry import SwKind, sw_kind

GAMMA_BITS = 8


def scale_of(aq: ActQuant) -> float:
    """The current scale of an activation quantizer, as a Python float."""
    return float(torch.exp(aq.log_scale)) if aq.learned else float(aq.ema_scale)


def requant(reals, qmin: int, qmax: int) -> Requant:
    """Requantization parameters for real multipliers (one per channel, or one)."""
    pairs = [quantize_multiplier(float(r)) for r in np.atleast_1d(np.asarray(reals, dtype=np.float64))]
    return Requant(np.array([m for m, _ in pairs], dtype=np.int64), np.array([s for _, s in pairs], dtype=np.int64),
                   qmin, qmax)


def codes(x: torch.Tensor, grid: Grid) -> torch.Tensor:
    """The integer codes of a tensor on a grid."""
    return round_half_up(x.detach().double() / float(grid.scale)).to(torch.int64).clamp(grid.qmin, grid.qmax)


def int_linear(lin: QLinear, s_in: float, s_out, qmin: int, qmax: int) -> IntLinear:
    """A QLinear's integers: weight codes, bias in accumulator units, requantization onto `s_out`
    (a float or one per output channel)."""
    w = lin.masked_weight().detach()
    s_w = lin.wq.effective_scale(w).detach()
    w_codes = lin.wq.codes(w, s_w).detach().to(torch.int64)
    unit = (s_in * s_w.double()).expand(w.shape[0])
    bias = torch.zeros(w.shape[0], dtype=torch.float64) if lin.bias is None else lin.bias.detach().double()
    b = round_half_up(bias / unit).clamp(-ACC_BOUND, ACC_BOUND - 1).to(torch.int64)
    reals = unit.numpy() / np.broadcast_to(np.asarray(s_out, dtype=np.float64), (w.shape[0],))
    return IntLinear(w_codes.numpy(), b.numpy(), requant(reals, qmin, qmax))


def int_norm(ln: nn.LayerNorm, s_out: float, qmin: int, qmax: int) -> IntNorm:
    """A LayerNorm's integers: gamma as 8-bit codes (max-abs scale), beta at gamma's scale * 2**-F."""
    g = ln.weight.detach().double()
    qg = (1 << (GAMMA_BITS - 1)) - 1
    s_g = float(g.abs().max().clamp(min=1e-8)) / qg
    gamma = round_half_up(g / s_g).clamp(-qg, qg).to(torch.int64)
    unit = s_g * 2.0 ** -FRAC_BITS
    beta = round_half_up(ln.bias.detach().double() / unit).clamp(-ACC_BOUND, ACC_BOUND - 1).to(torch.int64)
    return IntNorm(gamma.numpy(), beta.numpy(), requant(unit / s_out, qmin, qmax))


def straight_through(y_int: torch.Tensor, grid: Grid, surrogate: torch.Tensor) -> torch.Tensor:
    """The integer result as a float value, with the surrogate's gradient."""
    value = y_int.to(surrogate.dtype) * grid.scale.detach()
    return value + (surrogate - surrogate.detach())


class VitKind(SwKind):
    """A ViT kind: exports when its layer has @quant(w=..., a=...)."""

    # @bitserial(lanes=L): a hardware mapping only (every linear sub-layer on a bit-serial MAC with L
    # lanes, all precision planes): training is unchanged, export records it in the payload
    annotations = frozenset({"quant", "prune", "bitserial"})
    name = ""

    # The integer layer norm takes codes of at most INPUT_BITS (`int_layernorm`): which of the layer's
    # tensors its norms read. norms_input: its input (the encoder's norm1, the head's norm); norms_grid:
    # its own `a` grid (the encoder's norm2 reads the first residual sum, requantized onto it).
    norms_input = False
    norms_grid = False

    def problems(self, model, layer):
        out = super().problems(model, layer)
        q = layer.annotations.quant
        if q is None or q.w is None or q.a is None:
            out.append(("export", CdslError(
                f"integer export of {self.name} (layer {layer.name!r}) needs @quant(w=..., a=...)", span=layer.span)))
        if self.norms_grid and q is not None and q.a is not None and q.a > INPUT_BITS:
            out.append(("train", CdslError(
                f"@quant(a={q.a}) on {self.name} {layer.name!r}: its layer norm reads codes on this grid, and the "
                f"integer layer norm takes codes of at most {INPUT_BITS} bits", span=q.span,
                expected=f"a from 2 to {INPUT_BITS}")))
        src = layer.inputs[0]
        shape = model.shape_of(src)
        if self.norms_input and len(shape) == 2 and shape[1] > MAX_DIM:
            out.append(("train", CdslError(
                f"{self.name} {layer.name!r} layer-normalizes tokens of {shape[1]} features (from {src!r}); the "
                f"integer layer norm takes at most {MAX_DIM}", span=layer.span, expected=f"a width of at most {MAX_DIM}")))
        bits = code_bits(model, src)
        producer = next((lay for lay in model.layers if lay.name == src), None)
        reported = producer is not None and getattr(sw_kind(producer.op), "norms_grid", False)  # at its own @quant
        if self.norms_input and bits is not None and bits > INPUT_BITS and not reported:
            pq = producer.annotations.quant if producer is not None else None
            at = pq.span if pq is not None and pq.a is not None else layer.span
            out.append(("train", CdslError(
                f"{self.name} {layer.name!r} layer-normalizes {src!r}, whose codes are {bits} bits wide; the integer "
                f"layer norm takes codes of at most {INPUT_BITS} bits", span=at,
                expected=f"{src!r} at most {INPUT_BITS} bits wide")))
        return out

    def export(self, module, layer, ctx):
        if not (module.quant_on and module.aq is not None and ctx.in_grids[0] is not None):
            raise self.no_integer_form(layer)
        payload = module.payload(ctx.in_grids[0])
        if layer.annotations.bitserial is not None:
            payload = dataclasses.replace(payload, bitserial=layer.annotations.bitserial.lanes)
        grid = ctx.out_grid
        return payload, QType(grid.bits, grid.signed, float(grid.scale))

    def no_integer_form(self, layer):
        return CdslError(f"integer export of {self.name} (layer {layer.name!r}) needs @quant(w=..., a=...) and a "
                         "quantized input", span=layer.span)


def code_bits(model, name: str) -> int | None:
    """The code width of tensor `name` (None: float), as `cdsl check` computes it (`Op.out_bits`)."""
    bits: dict[str, int | None] = {i.name: i.dtype.bits for i in model.inputs}
    for lay in model.topo_order():
        q = lay.annotations.quant
        bits[lay.name] = lay.op.out_bits(tuple(bits[i] for i in lay.inputs), q.a if q is not None else None)
    return bits[name]

"""Binary layers: `@binary` maps a dense/conv2d layer to +1/-1 weights whose output is a sign against a
threshold (a batch norm folded into it), with the exact XNOR dot product (`BinaryTwin`); `@aqfp`
refines it with stochastic accumulation (`cdsl.sw.cores.aqfp`).

Training (binary active): the weights are sign(w) (w >= 0 -> +1; pruned weights stay 0) with a
straight-through gradient where |w| <= 1 (BinaryConnect); the inputs are +1/-1 already (the output of
`sign`). The accumulator `acc` goes through `ThresholdNorm`, a batch norm without a scale,
z = (acc - mean) / sqrt(var + eps) + beta, whose sign (the `sign` layer that must follow) is the
layer's output: +1 exactly where acc >= t = mean - beta * sqrt(var + eps). In eval mode the twin
returns that decision itself (+1/-1, from the integer threshold the export writes), so the
fake-quant network and the integer model agree sample by sample.

Export: weight codes +1/-1 (0 where pruned) as 2-bit two's complement, the threshold as the bias
-ceil(t) (acc is an integer, so acc >= t iff acc >= ceil(t)), and the requantization to the 2-bit
output type, clamp(acc + bias, -2, 1) (M = 1, S = 0): the `sign` that follows gives +1 where
acc >= ceil(t). The MAC core is the bit-parallel one: +1/-1 products summed exactly. Binary layers
must read +1/-1 codes (a `sign`, possibly through flatten/maxpool) and feed only layers that read
the sign of their input.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cdsl.contract.intmodel import QType, Requant
from cdsl.contract.ref.mac import ParallelCore
from cdsl.dsl import ir
from cdsl.errors import CdslError
from cdsl.sw.cores import CoreTwin, register_core
from cdsl.sw.kinds.sign import SIGN_TYPE
from cdsl.sw.registry import sw_kind

MARGIN_TYPE = QType(2, True, 1.0)  # the margin clamped to -2..1: only its sign is meaningful
WEIGHT_BITS = 2  # +1/-1 in two's complement


class WeightSign(torch.autograd.Function):
    """+1 where w >= 0, -1 elsewhere; the gradient passes where |w| <= 1."""

    @staticmethod
    def forward(ctx, w):
        ctx.save_for_backward(w)
        return torch.where(w >= 0, 1.0, -1.0).to(w.dtype)

    @staticmethod
    def backward(ctx, grad):
        (w,) = ctx.saved_tensors
        return grad * (w.abs() <= 1).to(grad.dtype)


class ThresholdNorm(nn.Module):
    """Batch normalization without a scale over the channel axis 1: z = (acc - mean) / sqrt(var + eps) + beta.

    Its channel count comes from the first batch (the twin is built from the annotation alone); loading
    a state dict takes the stored shapes. `threshold()` is where z crosses 0, in units of acc.
    """

    def __init__(self, *, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.beta = nn.Parameter(torch.zeros(0))
        self.register_buffer("running_mean", torch.zeros(0))
        self.register_buffer("running_var", torch.ones(0))

    def _resize(self, channels: int) -> None:
        # in place for the parameter: the optimizer holds this very object (its state starts at the first step)
        self.beta.data = torch.zeros(channels)
        self.running_mean = torch.zeros(channels)
        self.running_var = torch.ones(channels)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "beta"
        if key in state_dict and state_dict[key].shape != self.beta.shape:
            self._resize(int(state_dict[key].numel()))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, acc: torch.Tensor) -> torch.Tensor:
        channels = acc.shape[1]
        if self.beta.numel() != channels:
            self._resize(channels)
        dims = [0, *range(2, acc.dim())]
        shape = (1, channels) + (1,) * (acc.dim() - 2)
        if self.training:
            mean, var = acc.mean(dims), acc.var(dims, unbiased=False)
            with torch.no_grad():
                n = acc.numel() // channels
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * n / max(n - 1, 1))
        else:
            mean, var = self.running_mean, self.running_var
        return (acc - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + self.eps) + self.beta.reshape(shape)

    def threshold(self) -> np.ndarray:
        """t per channel (float64): z >= 0 exactly where acc >= t."""
        mean = self.running_mean.detach().double()
        std = torch.sqrt(self.running_var.detach().double() + self.eps)
        return (mean - self.beta.detach().double() * std).numpy()


def signed_weights(w: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The layer's +1/-1 weights (straight-through), 0 where pruned."""
    return WeightSign.apply(w) * mask


def decision(margin: torch.Tensor) -> torch.Tensor:
    """The layer's output in eval mode: +1 where margin >= 0, -1 elsewhere (float)."""
    return torch.where(margin >= 0, 1.0, -1.0)


class BinaryTwin(CoreTwin):
    """@binary: +1/-1 weights, the exact XNOR dot product, a threshold (see the module docstring)."""

    core_type = ParallelCore

    def __init__(self, annotation):
        super().__init__()
        self.annotation = annotation
        self.norm = ThresholdNorm()

    def binary_on(self, p) -> bool:
        return "binary" in p.module.active

    def products(self, p):
        if not self.binary_on(p):
            return p.exact()
        w = signed_weights(p.w, p.module.mask)
        acc = p.module.product(p.x, w, None)
        if self.training:
            return self.norm(acc)
        theta = torch.from_numpy(np.ceil(self.norm.threshold())).to(acc.dtype)
        return decision(acc - theta.reshape((1, -1) + (1,) * (acc.dim() - 2)))

    # ---- export

    def export_problems(self, model: ir.Model, layer: ir.Layer) -> list[CdslError]:
        """From the spec: a binary layer has no activation quantization and feeds sign readers only."""
        ann, out = layer.annotations, []
        if ann.quant is not None and ann.quant.a is not None:
            out.append(CdslError(f"layer {layer.name!r}: a @binary layer's output is the sign of its accumulator "
                                 "against a threshold; an activation quantization (@quant(a=...)) is not supported on "
                                 "it yet", span=ann.quant.span,
                                 expected=f"@binary without @quant, then sign({layer.name})"))
        readers = model.consumers(layer.name)
        if layer.name in model.outputs or not all(sw_kind(c.op).reads_sign_only for c in readers):
            out.append(CdslError(f"layer {layer.name!r}: the integer output of a @binary layer is its margin against "
                                 "the threshold, so only sign(...) may read it (not a model output, nor another layer)",
                                 span=self.annotation.span, expected=f"s = sign({layer.name}), read by the next layer"))
        return out

    def check_trained(self, layer: ir.Layer, ctx) -> None:
        """What only the trained network tells: the input holds +1/-1 codes, the threshold was learnt."""
        if ctx.in_types[0] != SIGN_TYPE:
            raise CdslError(f"layer {layer.name!r}: @binary needs +1/-1 inputs (the output of sign), its input "
                            f"{layer.inputs[0]!r} holds {ctx.in_types[0].bits}-bit codes", span=self.annotation.span,
                            expected=f"s = sign({layer.inputs[0]}) in front")
        if self.norm.beta.numel() == 0:
            raise CdslError(f"layer {layer.name!r} was never trained with @binary active, it has no threshold",
                            span=self.annotation.span, expected="a training stage with compress including binary")

    def integer_weights(self, module) -> np.ndarray:
        with torch.no_grad():
            w = signed_weights(module.masked_weight(), module.mask)
        return w.to(torch.int64).reshape(w.shape[0], -1).numpy()

    def export(self, module, layer, ctx):
        self.check_trained(layer, ctx)
        weight = self.integer_weights(module)
        clamp = Requant(np.ones(1, dtype=np.int64), np.zeros(1, dtype=np.int64), MARGIN_TYPE.qmin, MARGIN_TYPE.qmax)
        fields = dict(weight=weight, bias=None, w_bits=WEIGHT_BITS, w_scale=np.ones(1),
                      mask=self.pruning_mask(module, layer), requant=clamp, core=self.core())
        fields.update(self.output_stage(module, weight))
        return fields, MARGIN_TYPE

    def output_stage(self, module, weight: np.ndarray) -> dict:
        """The fields that hold the threshold: here the bias -ceil(t), clipped to the accumulator's range."""
        k = weight.shape[1]
        theta = np.clip(np.ceil(self.norm.threshold()), -k - 1, k + 1).astype(np.int64)
        return {"bias": -theta}

    @staticmethod
    def pruning_mask(module, layer) -> np.ndarray | None:
        if layer.annotations.prune is None:
            return None
        return module.mask.bool().reshape(module.mask.shape[0], -1).numpy().copy()


register_core("binary", BinaryTwin)

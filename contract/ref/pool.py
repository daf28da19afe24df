"""Integer references of max and average pooling over square windows (no padding).

Average pooling is `requantize(window sum, M, S, qmin, qmax)` with
(M, S) = quantize_multiplier(1 / kernel**2): the division goes through the one
requantization contract, as the hardware does (sum, then requantize).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cdsl.contract import codec
from cdsl.contract.intmodel import Payload, Requant
from cdsl.contract.ref._tensor import as_int64, like_input
from cdsl.contract.ref.requant import quantize_multiplier, requantize


def _windows(xt: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    if not isinstance(kernel, int) or kernel < 1:
        raise ValueError(f"kernel must be a positive int, got {kernel!r}")
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be a positive int, got {stride!r}")
    if xt.dim() < 3:
        raise ValueError(f"pooling needs [..., C, H, W], got shape {tuple(xt.shape)!r}")
    if xt.shape[-1] < kernel or xt.shape[-2] < kernel:
        raise ValueError(f"kernel {kernel!r} is larger than the input {tuple(xt.shape[-2:])!r}")
    # [..., C, Ho, Wo, K, K]
    return xt.unfold(-2, kernel, stride).unfold(-2, kernel, stride)


def maxpool(x, *, kernel: int, stride: int):
    """x [..., C, H, W] -> [..., C, (H-K)//S+1, (W-K)//S+1], the maximum of each window."""
    xt = as_int64(x, what="maxpool input")
    win = _windows(xt, kernel, stride)
    return like_input(win.amax(dim=(-2, -1)), x)


def avg_multiplier(kernel: int) -> tuple[int, int]:
    """(M, S) of the average: quantize_multiplier(1 / kernel**2)."""
    return quantize_multiplier(1.0 / (kernel * kernel))


def avgpool(x, *, kernel: int, stride: int, multiplier: int, shift: int, qmin: int, qmax: int):
    """x [..., C, H, W] -> requantize(sum of each K x K window, multiplier, shift, qmin, qmax)."""
    xt = as_int64(x, what="avgpool input")
    win = _windows(xt, kernel, stride)
    total = win.sum(dim=(-2, -1))
    return like_input(requantize(total, multiplier, shift, qmin, qmax), x)


@codec.serializable("maxpool")
@dataclass(frozen=True, eq=False)
class MaxPoolPayload(Payload):
    """Max pooling over kernel x kernel windows, `stride` apart; the output type is the input's."""

    kernel: int
    stride: int

    def check(self, layer):
        _check_window(self, layer)

    def run(self, layer, inputs, settings):
        (x,) = inputs
        return maxpool(x, kernel=self.kernel, stride=self.stride)


@codec.serializable("avgpool")
@dataclass(frozen=True, eq=False)
class AvgPoolPayload(Payload):
    """Average pooling: requantize(window sum) with `requant` = (avg_multiplier(kernel), the output bounds)."""

    kernel: int
    stride: int
    requant: Requant

    def check(self, layer):
        from cdsl.contract.ref._weighted import check_requant

        _check_window(self, layer)
        check_requant(self.requant, "payload.requant", channels=1, out_type=layer.out_type)

    def run(self, layer, inputs, settings):
        (x,) = inputs
        rq = self.requant
        if rq.multiplier.size != 1:
            raise ValueError(f"golden: avgpool {layer.name!r} needs a one-element requant (1/kernel**2)")
        return avgpool(x, kernel=self.kernel, stride=self.stride, multiplier=int(rq.multiplier[0]),
                       shift=int(rq.shift[0]), qmin=rq.qmin, qmax=rq.qmax)


def _check_window(pay, layer) -> None:
    """A pooling layer: one (C, H, W) input, the window fits it, the output shape and type follow."""
    from cdsl.contract.ref import _checks

    in_shape, in_type = _checks.one_input(layer)
    if len(in_shape) != 3:
        raise ValueError(f"in_shapes[0]: expected [C, H, W], found {list(in_shape)}")
    channels, h, w = in_shape
    if pay.kernel < 1 or pay.stride < 1 or pay.kernel > min(h, w):
        raise ValueError(f"payload: kernel {pay.kernel}, stride {pay.stride} do not fit an input of {list(in_shape)}")
    _checks.same_shape(layer, (channels, (h - pay.kernel) // pay.stride + 1, (w - pay.kernel) // pay.stride + 1))
    _checks.same_type(layer, in_type)

"""Integer reference of a 2-D convolution (cross-correlation, as torch): exact int64.

Zero padding (the activation zero point is 0). Channels-first: x [..., C, H, W],
weight [O, C, K, K], output [..., O, Ho, Wo] with Ho = (H + 2P - K) // S + 1.
A convolution is im2col (`im2col`: every output position's window, flattened in (c, ky, kx)
order, the order of the weight matrix [O, C*K*K]) followed by a matrix product; torch has no
int64 convolution on CPU, and the MAC cores of `cdsl.contract.ref.mac` work on such columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cdsl.contract import codec
from cdsl.contract.ref._tensor import as_int64, like_input
from cdsl.contract.ref._weighted import Weighted


def _check_geometry(stride, padding):
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be a positive int, got {stride!r}")
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative int, got {padding!r}")


def im2col(x: torch.Tensor, *, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """x int64 [N, C, H, W] -> windows int64 [N, Ho, Wo, C*K*K] in (c, ky, kx) order, zero padded."""
    _check_geometry(stride, padding)
    n, c, h, w = x.shape
    if h + 2 * padding < kernel or w + 2 * padding < kernel:
        raise ValueError(f"kernel {kernel!r} is larger than the padded input {h + 2 * padding}x{w + 2 * padding}")
    padded = F.pad(x, (padding, padding, padding, padding))  # zeros
    windows = padded.unfold(2, kernel, stride).unfold(3, kernel, stride)  # [N, C, Ho, Wo, K, K]
    ho, wo = windows.shape[2], windows.shape[3]
    return windows.permute(0, 2, 3, 1, 4, 5).reshape(n, ho, wo, c * kernel * kernel)


def conv2d(x, weight, bias=None, *, stride: int = 1, padding: int = 0):
    """x [..., C, H, W], weight [O, C, K, K], bias [O] or None -> acc [..., O, Ho, Wo] int64."""
    _check_geometry(stride, padding)
    xt = as_int64(x, what="conv2d input")
    wt = as_int64(weight, what="conv2d weight")
    if wt.dim() != 4 or wt.shape[2] != wt.shape[3]:
        raise ValueError(f"conv2d weight must be [out, in, k, k], got shape {tuple(wt.shape)!r}")
    if xt.dim() < 3 or xt.shape[-3] != wt.shape[1]:
        raise ValueError(f"conv2d input shape {tuple(xt.shape)!r} does not match weight {tuple(wt.shape)!r}")
    out_ch, in_ch, k, _ = wt.shape
    lead = xt.shape[:-3]
    cols = im2col(xt.reshape(-1, *xt.shape[-3:]), kernel=k, stride=stride, padding=padding)
    acc = cols @ wt.reshape(out_ch, in_ch * k * k).T  # [N, Ho, Wo, O]
    if bias is not None:
        bt = as_int64(bias, what="conv2d bias")
        if tuple(bt.shape) != (out_ch,):
            raise ValueError(f"conv2d bias must be [{out_ch}], got shape {tuple(bt.shape)!r}")
        acc = acc + bt
    acc = acc.permute(0, 3, 1, 2).reshape(*lead, out_ch, *acc.shape[1:3])
    return like_input(acc, x)


@codec.serializable("conv2d")
@dataclass(frozen=True, eq=False)
class Conv2dPayload(Weighted):
    """A convolution: x [B, C, H, W] -> requantize(core.matmul(im2col(x), weight) + bias) [B, O, Ho, Wo].
    `weight` is the [O, C*k*k] matrix (im2col order)."""

    kernel: int
    stride: int
    padding: int

    def window(self) -> tuple[int, int, int]:
        return self.kernel, self.stride, self.padding

    def fan_in_of(self, in_shape):
        if len(in_shape) != 3:
            raise ValueError(f"in_shapes[0]: expected [C, H, W], found {list(in_shape)}")
        return in_shape[0] * self.kernel * self.kernel

    def out_shape_of(self, in_shape):
        _, h, w = in_shape
        k, s, p = self.kernel, self.stride, self.padding
        if min(k, s) < 1 or p < 0 or k > min(h, w) + 2 * p:
            raise ValueError(f"payload: kernel {k}, stride {s}, padding {p} do not fit an input of {list(in_shape)}")
        return (self.out_channels, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)

    def run(self, layer, inputs, settings):
        (x,) = inputs
        cols = im2col(x, kernel=self.kernel, stride=self.stride, padding=self.padding)
        return self.accumulate(layer, cols, settings).permute(0, 3, 1, 2)

"""Integer reference of a 2-D convolution (cross-correlation, as torch): exact int64.

Zero padding (the activation zero point is 0). Channels-first: x [..., C, H, W],
weight [O, C, K, K], output [..., O, Ho, Wo] with Ho = (H + 2P - K) // S + 1.
torch has no int64 convolution on CPU, so this is im2col (Tensor.unfold) plus an
int64 matmul.
"""

from __future__ import annotations

import torch.nn.functional as F

from cdsl.contract.ref._tensor import as_int64, like_input


def conv2d(x, weight, bias=None, *, stride: int = 1, padding: int = 0):
    """x [..., C, H, W], weight [O, C, K, K], bias [O] or None -> acc [..., O, Ho, Wo] int64."""
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be a positive int, got {stride!r}")
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative int, got {padding!r}")
    xt = as_int64(x, what="conv2d input")
    wt = as_int64(weight, what="conv2d weight")
    if wt.dim() != 4 or wt.shape[2] != wt.shape[3]:
        raise ValueError(f"conv2d weight must be [out, in, k, k], got shape {tuple(wt.shape)!r}")
    if xt.dim() < 3 or xt.shape[-3] != wt.shape[1]:
        raise ValueError(f"conv2d input shape {tuple(xt.shape)!r} does not match weight {tuple(wt.shape)!r}")
    out_ch, in_ch, k, _ = wt.shape
    lead = xt.shape[:-3]
    h, w = xt.shape[-2], xt.shape[-1]
    if h + 2 * padding < k or w + 2 * padding < k:
        raise ValueError(f"kernel {k!r} is larger than the padded input {h + 2 * padding}x{w + 2 * padding}")
    flat = xt.reshape(-1, in_ch, h, w)
    padded = F.pad(flat, (padding, padding, padding, padding))  # zeros
    # windows: [N, C, Ho, Wo, K, K]
    windows = padded.unfold(2, k, stride).unfold(3, k, stride)
    n, _, ho, wo = windows.shape[:4]
    cols = windows.permute(0, 2, 3, 1, 4, 5).reshape(n, ho, wo, in_ch * k * k)
    acc = cols @ wt.reshape(out_ch, in_ch * k * k).T  # [N, Ho, Wo, O]
    if bias is not None:
        bt = as_int64(bias, what="conv2d bias")
        if tuple(bt.shape) != (out_ch,):
            raise ValueError(f"conv2d bias must be [{out_ch}], got shape {tuple(bt.shape)!r}")
        acc = acc + bt
    acc = acc.permute(0, 3, 1, 2).reshape(*lead, out_ch, ho, wo)
    return like_input(acc, x)

"""Integer references of the elementwise activations."""

from __future__ import annotations

import torch

from cdsl.contract.ref._tensor import as_int64, like_input


def relu(x):
    """max(x, 0), elementwise, int64."""
    xt = as_int64(x, what="relu input")
    return like_input(xt.clamp(min=0), x)


def sign(x):
    """+1 where x >= 0, -1 where x < 0 (zero maps to +1), int64."""
    xt = as_int64(x, what="sign input")
    return like_input(torch.where(xt >= 0, 1, -1).to(torch.int64), x)

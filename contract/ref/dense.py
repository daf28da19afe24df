"""Integer reference of a dense (fully connected) layer: acc = x @ weight.T + bias, exact int64.

The requantization that follows is `cdsl.contract.ref.requant.requantize`; this function
returns the raw accumulator so that blocks and tests can check it on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdsl.contract import codec
from cdsl.contract.ref._tensor import as_int64, like_input
from cdsl.contract.ref._weighted import Weighted


def dense(x, weight, bias=None):
    """x [..., K], weight [O, K], bias [O] or None -> acc [..., O] (int64, no overflow for |acc| < 2**63)."""
    xt = as_int64(x, what="dense input")
    wt = as_int64(weight, what="dense weight")
    if wt.dim() != 2:
        raise ValueError(f"dense weight must be [out, in], got shape {tuple(wt.shape)!r}")
    if xt.shape[-1] != wt.shape[1]:
        raise ValueError(f"dense input has {xt.shape[-1]!r} features, weight expects {wt.shape[1]!r}")
    acc = xt @ wt.T
    if bias is not None:
        bt = as_int64(bias, what="dense bias")
        if tuple(bt.shape) != (wt.shape[0],):
            raise ValueError(f"dense bias must be [{wt.shape[0]}], got shape {tuple(bt.shape)!r}")
        acc = acc + bt
    return like_input(acc, x)


@codec.serializable("dense")
@dataclass(frozen=True, eq=False)
class DensePayload(Weighted):
    """A dense layer: x [B, K] -> requantize(core.matmul(x, weight) + bias) [B, out]."""

    def run(self, layer, inputs, settings):
        (x,) = inputs
        return self.accumulate(layer, x.reshape(x.shape[0], -1), settings)

"""The payload fields and golden step shared by the weighted kinds (dense, conv2d).

    acc = core.matmul(x, weight) + bias          (int64, exact unless the core says otherwise)
    y   = requantize(acc, M[c], S[c], qmin, qmax)

`weight` is int64 [out, K] as the hardware sees it (a conv kernel flattened to C*k*k in im2col
order), `bias` int64 [out] in accumulator units, `w_scale` the float scale(s) training used (for
reference only: the integers are the contract), `mask` the pruning mask (False = pruned, the
weight is 0 there), `requant` the per-channel (or per-tensor) requantization, `core` how the
products are summed (`cdsl.contract.ref.mac.MacCore`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from cdsl.contract.intmodel import IntLayer, Payload, Requant, Setting
from cdsl.contract.ref.mac import MacCore


@dataclass(frozen=True, eq=False)
class Weighted(Payload):
    weight: np.ndarray
    bias: np.ndarray | None
    w_bits: int
    w_scale: np.ndarray
    mask: np.ndarray | None
    requant: Requant
    core: MacCore

    def settings(self, layer: IntLayer) -> tuple[Setting, ...]:
        return self.core.settings(w_bits=self.w_bits)

    def check(self, layer: IntLayer) -> None:
        from cdsl.contract.ref import _checks as c

        in_shape, _ = c.one_input(layer)
        c.at_least(self.w_bits, "payload.w_bits", 1, 16)
        out = self.out_channels
        c.int_array(self.weight, "payload.weight", lo=-(1 << (self.w_bits - 1)), hi=(1 << (self.w_bits - 1)) - 1)
        if self.weight.ndim != 2:
            raise ValueError(f"payload.weight: expected a [out, K] matrix, found shape {list(self.weight.shape)}")
        c.shape_is(self.weight, "payload.weight", (out, self.fan_in_of(in_shape)))
        c.same_shape(layer, self.out_shape_of(in_shape))
        if self.bias is not None:
            c.int_array(self.bias, "payload.bias", shape=(out,))
        if self.mask is not None:
            c.bool_array(self.mask, "payload.mask", shape=self.weight.shape)
            if np.any(self.weight[~self.mask]):
                raise ValueError("payload.weight: expected 0 wherever payload.mask prunes a weight")
        c.shape_is(self.w_scale, "payload.w_scale", self.requant.multiplier.shape)
        check_requant(self.requant, "payload.requant", channels=out, out_type=layer.out_type)
        self.core.check(w_bits=self.w_bits)

    def fan_in_of(self, in_shape: tuple[int, ...]) -> int:
        """K: the inputs of one output for an input of `in_shape`."""
        return math.prod(in_shape)

    def out_shape_of(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.out_channels,)

    def window(self) -> tuple[int, int, int]:
        """(kernel, stride, padding) of the sliding window: a dense layer is the 1x1 case."""
        return 1, 1, 0

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    @property
    def fan_in(self) -> int:
        return int(self.weight.shape[1])

    def accumulate(self, layer: IntLayer, cols: torch.Tensor, settings: Mapping[str, int]) -> torch.Tensor:
        """cols int64 [..., K] -> requantized outputs int64 [..., out] (channel last)."""
        w = torch.from_numpy(np.asarray(self.weight, dtype=np.int64))
        acc = self.core.matmul(cols, w, w_bits=self.w_bits, settings=settings)
        if self.bias is not None:
            acc = acc + torch.from_numpy(np.asarray(self.bias, dtype=np.int64))
        try:
            return self.requant.apply(acc, channel_dim=-1)
        except ValueError as err:  # requantize refuses what int64 cannot hold exactly
            raise ValueError(f"golden: layer {layer.name!r}: {err}") from None


def check_requant(rq: Requant, field: str, *, channels: int, out_type) -> None:
    """A requantization's arrays (one entry, or one per channel) and bounds fit the output type."""
    from cdsl.contract.ref import _checks as c
    from cdsl.contract.ref.requant import MAX_SHIFT, MULT_BITS

    if rq.multiplier.shape not in ((1,), (channels,)):
        raise ValueError(f"{field}.multiplier: expected shape [1] or [{channels}], found {list(rq.multiplier.shape)}")
    c.int_array(rq.multiplier, f"{field}.multiplier", lo=0, hi=(1 << MULT_BITS) - 1)
    c.int_array(rq.shift, f"{field}.shift", shape=rq.multiplier.shape, lo=0, hi=MAX_SHIFT)
    if (rq.qmin, rq.qmax) != (out_type.qmin, out_type.qmax):
        raise ValueError(f"{field}: expected qmin, qmax = {out_type.qmin}, {out_type.qmax} (the output type's range), "
                         f"found {rq.qmin}, {rq.qmax}")

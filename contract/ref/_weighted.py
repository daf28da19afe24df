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

"""Integer reference of the bit-parallel MAC (`cdsl.hw.mac.Mac`), and the base of every MAC core.

A weighted layer (dense, conv2d) computes `acc[o] = sum_k x[k] * w[o, k] + bias[o]` and then
requantizes. *How* the products are summed is its MAC core, a typed part of the layer's payload:
the bit-parallel MAC (`ParallelCore`) sums them exactly; the bit-serial MAC
(`cdsl.contract.ref.bitserial_mac.BitSerialCore`) sums them exactly at full precision and truncates
the weights at a runtime precision. A core that changes the arithmetic (an ADC that quantizes
partial sums, a stochastic accumulator) is another `MacCore` subclass in its own file, with its own
`matmul`; the dense and conv2d kinds delegate to whatever core their payload holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch

from cdsl.contract import codec
from cdsl.contract.intmodel import Setting


class MacCore(codec.ArrayEq):
    """The arithmetic of a weighted layer's products (a frozen dataclass, codec-registered)."""

    def settings(self, *, w_bits: int) -> tuple[Setting, ...]:
        return ()

    def check(self, *, w_bits: int) -> None:
        """Raise ValueError("field: expected ...") if the core's parameters do not fit."""
        lanes = getattr(self, "lanes", None)
        if lanes is not None and lanes < 1:
            raise ValueError(f"payload.core.lanes: expected >= 1, found {lanes}")

    def matmul(self, x: torch.Tensor, weight: torch.Tensor, *, w_bits: int,
               settings: Mapping[str, int]) -> torch.Tensor:
        """x int64 [..., K], weight int64 [O, K] -> acc int64 [..., O] (no bias)."""
        raise NotImplementedError


@codec.serializable("parallel")
@dataclass(frozen=True, eq=False)
class ParallelCore(MacCore):
    """Exact products, `lanes` multipliers per cycle (None: the hardware planner chooses)."""

    lanes: int | None = None

    def matmul(self, x, weight, *, w_bits, settings):
        return x @ weight.T

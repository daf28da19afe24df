"""Parts shared by the integer ViT kinds (patch_embed, encoder, cls_head): an integer linear
sub-layer and an integer layer norm, each with its requantization onto an 8-bit grid.

    IntLinear: y = requantize(x @ weight.T + bias, M, S)        (dense + the one requantization)
    IntNorm:   y = int_layernorm(x, gamma, beta, M, S)            (cdsl.contract.ref.int_layernorm)

Both are plain integer functions of their fields; the kinds' payloads hold them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from cdsl.contract import codec
from cdsl.contract.intmodel import Requant
from cdsl.contract.ref import _checks as c
from cdsl.contract.ref.dense import dense
from cdsl.contract.ref.int_layernorm import FRAC_BITS, int_layernorm
from cdsl.contract.ref.requant import MAX_SHIFT, MULT_BITS

ACC_BOUND = 1 << 31  # biases, positions and gamma/beta integers are int32


def requant_ok(r: Requant, field: str, channels: int | None = None) -> None:
    n = r.multiplier.shape[0] if r.multiplier.ndim == 1 else -1
    if channels is not None and n not in (1, channels):
        raise ValueError(f"{field}.multiplier: expected 1 or {channels} entries, found {r.multiplier.shape}")
    c.int_array(r.multiplier, f"{field}.multiplier", lo=0, hi=(1 << MULT_BITS) - 1)
    c.int_array(r.shift, f"{field}.shift", shape=tuple(r.multiplier.shape), lo=0, hi=MAX_SHIFT)


@dataclass(frozen=True, eq=False)
class BitserialMapping:
    """The `bitserial` field of the ViT payloads (`patch_embed`, `encoder`, `cls_head`): with
    `@bitserial(lanes=L)` on the layer every linear sub-layer maps to a bit-serial MAC with L lanes (a
    hardware mapping: the integers are the same); None: bit-parallel. Keyword-only, after the payload's
    own fields; files written before the field decode as bit-parallel (`codec_optional`)."""

    bitserial: int | None = field(default=None, kw_only=True)
    codec_optional: ClassVar[frozenset[str]] = frozenset({"bitserial"})

    def check_lanes(self, most: int) -> None:
        """L is at most `most`, the fan-in of the layer's narrowest linear sub-layer."""
        if self.bitserial is not None:
            c.at_least(self.bitserial, "payload.bitserial", 1, most)


@codec.serializable("vit_linear")
@dataclass(frozen=True, eq=False)
class IntLinear(codec.ArrayEq):
    weight: np.ndarray  # int64 [O, K]
    bias: np.ndarray  # int64 [O], accumulator units
    requant: Requant  # per output channel or per tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.requant.apply(dense(x, self.weight, self.bias), channel_dim=-1)

    def check(self, field: str, k: int, o: int, w_bits: int = 16) -> None:
        lim = 1 << (w_bits - 1)
        c.int_array(self.weight, f"{field}.weight", shape=(o, k), lo=-lim, hi=lim - 1)
        c.int_array(self.bias, f"{field}.bias", shape=(o,), lo=-ACC_BOUND, hi=ACC_BOUND - 1)
        requant_ok(self.requant, f"{field}.requant", o)


@codec.serializable("vit_norm")
@dataclass(frozen=True, eq=False)
class IntNorm(codec.ArrayEq):
    gamma: np.ndarray  # int64 [D], codes of gamma
    beta: np.ndarray  # int64 [D], at gamma's scale * 2**-FRAC_BITS
    requant: Requant  # per tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        r = self.requant
        return int_layernorm(x, torch.from_numpy(self.gamma), torch.from_numpy(self.beta), int(r.multiplier[0]),
                             int(r.shift[0]), r.qmin, r.qmax, FRAC_BITS)

    def check(self, field: str, d: int) -> None:
        c.int_array(self.gamma, f"{field}.gamma", shape=(d,), lo=-(1 << 15), hi=(1 << 15) - 1)
        c.int_array(self.beta, f"{field}.beta", shape=(d,), lo=-ACC_BOUND, hi=ACC_BOUND - 1)
        requant_ok(self.requant, f"{field}.requant", 1)

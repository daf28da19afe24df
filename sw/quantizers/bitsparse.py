"""MSQ's weight quantizer (`@bitsparse(target=..., strength=...)`): a round-clamp quantizer whose width
drops as its least significant bits vanish.

Codes at the current width n with scale s: `q = clamp(floor(w / s + 0.5), -2**(n-1), 2**(n-1) - 1)`.
The grids nest as MSQ's RoundClamp requires (a power-of-two step per bit, unlike DoReFa's 2**n - 1):
the (n-1)-bit grid is the even n-bit codes at scale 2s, and its rounding boundaries fall on the odd
codes, so a weight whose code has LSB = 1 can move to either neighbour with LSB = 0.

- The least significant bit, computed from the float weight without any per-bit parameter:
  `lsb = q - 2 * qc`, qc the (n-1)-bit code of the same weight (held constant). It is 0 for an even
  code and +-1 for an odd one; the gradient reaches w through q's straight-through rounding, pointing
  an odd-coded weight at the coarse grid point it rounds to (`lsb_penalty`).
- Dropping k bits (`drop`): n -> n - k and s -> s * 2**k. The range stays; the new codes are the
  old ones rounded to the coarser grid (exact where their k low bits were zero).

The width lives in the module's extra state, so a checkpoint restores it; the export writes
`w_bits` = the current width and the codes at it. When and by how much bits drop is decided for
the whole network in `cdsl.sw.objectives.bitsparse` (Hessian sensitivity, LSB sparsity, the budget).
"""

from __future__ import annotations

import math

import torch

from cdsl.dsl import ir
from cdsl.sw.layers import Compressible, WeightQuant, quantize_codes, round_half_up
from cdsl.sw.quantizers import QuantizerContext, register_quantizer

MIN_BITS = 2  # a layer never drops below this width


class BitSparseQuant(WeightQuant, Compressible):
    """Round-clamp codes at a width that drops during training; `target` and `strength` are the
    annotation's (the group budget and the regularizer's weight)."""

    def __init__(self, *, target: int, strength: float, **options):
        super().__init__(**options)
        if not 1 <= target <= self.bits:
            raise ValueError(f"target must lie in 1..{self.bits}, got {target!r}")
        if not strength > 0:
            raise ValueError(f"strength must be positive, got {strength!r}")
        self.full_bits = self.bits
        self.target, self.strength = target, strength
        self.epoch = 0
        self.check_due = False  # set at the start of an epoch with bitsparse active
        self.regularizing = True  # until the network's budget is met
        self.sensitivity: float | None = None  # the latest Hessian estimate, tr(H) / n
        self.history: list[dict] = []  # one entry per drop: epoch, from, to, sensitivity, LSB sparsity

    # -- state a checkpoint must restore
    def get_extra_state(self) -> dict:
        return {"bits": self.bits, "regularizing": self.regularizing, "sensitivity": self.sensitivity,
                "history": list(self.history)}

    def set_extra_state(self, state: dict) -> None:
        self._set_bits(int(state["bits"]))
        self.regularizing = bool(state["regularizing"])
        self.sensitivity = state["sensitivity"]
        self.history = list(state["history"])

    def _set_bits(self, bits: int) -> None:
        if not MIN_BITS <= bits <= self.full_bits:
            raise ValueError(f"bits must lie in {MIN_BITS}..{self.full_bits}, got {bits!r}")
        self.bits = bits
        self.qmin, self.qmax = ir.int_range(bits, True)

    # -- hooks
    @property
    def on(self) -> bool:
        return "bitsparse" in self.active and "quant" in self.active

    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        self.epoch = epoch
        self.check_due = self.on and self.regularizing

    # -- the quantizer
    def _max_abs_scale(self, w: torch.Tensor) -> torch.Tensor:
        # the full width's step times 2**(dropped bits), so the grids nest with "max" scales too
        full_qmax = ir.int_range(self.full_bits, True)[1]
        return super()._max_abs_scale(w) * self.qmax / full_qmax * (1 << (self.full_bits - self.bits))

    @torch.no_grad()
    def drop(self, k: int, *, sensitivity: float, lsb_sparsity: float) -> None:
        """Drop the `k` least significant bits: width n - k, scale times 2**k."""
        if not isinstance(k, int) or not 1 <= k <= self.bits - MIN_BITS:
            raise ValueError(f"k must be an int in 1..{self.bits - MIN_BITS}, got {k!r}")
        self.history.append({"epoch": self.epoch, "from": self.bits, "to": self.bits - k,
                             "sensitivity": sensitivity, "lsb_sparsity": lsb_sparsity})
        self._set_bits(self.bits - k)
        self.log_scale.add_(k * math.log(2))

    def lsb_penalty(self, w: torch.Tensor) -> torch.Tensor:
        """Sum over the weights of |LSB| in units of the half range (MSQ's normalized magnitude: one code
        step is 2**-(n-1)); its gradient moves odd-coded weights toward the coarser grid."""
        scale = self.effective_scale(w).detach()
        shape = (-1,) + (1,) * (w.dim() - 1)
        q = quantize_codes(w, scale.reshape(shape), self.qmin, self.qmax)
        coarse = (round_half_up(w.detach() / (2 * scale.reshape(shape)))).clamp(self.qmin // 2, self.qmax // 2)
        return (q - 2 * coarse).abs().sum() / (1 << (self.bits - 1))

    @torch.no_grad()
    def lsb_sparsity(self, w: torch.Tensor, mask: torch.Tensor) -> float:
        """The share of kept (unpruned) weights whose code has LSB = 0."""
        q = self.codes(w, self.effective_scale(w))
        kept = mask.bool()
        return float((torch.remainder(q[kept], 2) == 0).double().mean()) if bool(kept.any()) else 1.0


def _bitsparse_quant(annotation: ir.BitSparse, ctx: QuantizerContext) -> BitSparseQuant:
    return BitSparseQuant(target=annotation.target, strength=annotation.strength, **ctx.base_options())


register_quantizer("bitsparse", _bitsparse_quant)

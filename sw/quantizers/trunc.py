"""TruncQuant's weight quantizer (`@trunc(bits=[...])`): codes that the hardware truncates at run time.

The weights are stored once, at the layer's `w` = B bits, with the plain quantizer's codes
`q = clamp(floor(w / s + 0.5), -2**(B-1), 2**(B-1) - 1)` (so the export is unchanged). At runtime
precision p the bit-serial MAC processes only the top p weight planes, which multiplies by

    t_p(q) = (q >> (B - p)) << (B - p)        (arithmetic shift: floor toward minus infinity)

with the same scale s and the same requantization (`cdsl.contract.ref.bitserial_mac.truncate`).
The forward pass at precision p uses exactly `s * t_p(q)`, so the fake-quant network at p and the
golden model at p compute the same integers. The gradient passes straight through the floor, as
through the rounding: the weights and the LSQ scale learn from the truncated forward pass (TruncQuant's
"quantizer aligned with the output of truncation"; `cdsl.sw.objectives.trunc` runs every precision).

Truncation is a runtime setting of the MAC core, so a `@trunc` layer must map to a core that
declares `precision` (`@bitserial`); any other is refused at the annotation.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from cdsl.dsl import ir
from cdsl.errors import CdslError
from cdsl.sw.layers import WeightQuant
from cdsl.sw.quantizers import QuantizerContext, register_quantizer


def truncate_codes(q: torch.Tensor, bits: int, precision: int) -> torch.Tensor:
    """`(q >> (bits - precision)) << (bits - precision)` of integer-valued float codes (floor), exactly;
    precision 0 or `bits` keeps them."""
    if precision in (0, bits):
        return q
    step = float(1 << (bits - precision))
    return torch.floor(q / step) * step


class TruncQuant(WeightQuant):
    """The plain quantizer's codes at `bits`, truncated to the runtime `precision` (0: all bits).

    `precisions`: the set the layer is trained for (the annotation's, plus `bits` itself, the stored
    model), highest first.
    """

    def __init__(self, *, precisions: tuple[int, ...], **options):
        super().__init__(**options)
        if not precisions or any(not 1 <= p <= self.bits for p in precisions):
            raise ValueError(f"precisions must lie in 1..{self.bits}, got {precisions!r}")
        self.precisions = tuple(sorted({*precisions, self.bits}, reverse=True))
        self.precision = 0

    def set_precision(self, precision: int) -> None:
        if not isinstance(precision, int) or isinstance(precision, bool) or not 0 <= precision <= self.bits:
            raise ValueError(f"precision must be an int in 0..{self.bits}, got {precision!r}")
        self.precision = precision

    def trained_precision(self, p: int) -> int:
        """The precision this layer runs at in a training pass at p: the lowest of its set at or above p
        (its full width when p is above them all)."""
        return min((q for q in self.precisions if q >= p), default=self.bits)

    def codes(self, w: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        q = super().codes(w, scale)
        return q + (truncate_codes(q.detach(), self.bits, self.precision) - q.detach())


def trunc_quantizers(net: nn.Module) -> list[TruncQuant]:
    return [m for m in net.modules() if isinstance(m, TruncQuant)]


@contextmanager
def truncated(net: nn.Module, precision: int):
    """Run every `@trunc` layer of `net` at `precision` (capped at each layer's width) inside the block."""
    quantizers = trunc_quantizers(net)
    try:
        for q in quantizers:
            q.set_precision(min(precision, q.bits))
        yield
    finally:
        for q in quantizers:
            q.set_precision(0)


def _trunc_problems(annotation: ir.Trunc, layer: ir.Layer, twin) -> list[CdslError]:
    if "precision" in {s.name for s in twin.settings(w_bits=layer.annotations.quant.w)}:
        return []
    return [CdslError(f"@trunc on layer {layer.name!r} needs a MAC that truncates its weights at run time",
                      span=annotation.span, expected="@bitserial(lanes=L) on this layer (a runtime precision register)")]


def _trunc_quant(annotation: ir.Trunc, ctx: QuantizerContext) -> TruncQuant:
    return TruncQuant(precisions=annotation.bits, **ctx.base_options())


register_quantizer("trunc", _trunc_quant, problems=_trunc_problems)

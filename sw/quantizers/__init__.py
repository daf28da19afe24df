"""Weight quantizers chosen by a layer's annotations: how a weighted layer's float weights become the
integer codes that the forward pass uses and the export writes.

A layer with `@quant(w=...)` and none of the annotations registered here gets the plain quantizer
(`cdsl.sw.layers.WeightQuant`: round half up, clamp, LSQ scales). An annotation that changes how the
codes are formed (`@trunc`: codes truncated at a runtime precision; `@bitsparse`: a width that drops
as the least significant bits vanish) registers a `WeightQuant` subclass in its own module of this
package:

    register_quantizer("trunc", factory)     # factory(annotation, QuantizerContext) -> WeightQuant

Every module here is imported on first use. The dense and conv2d kinds ask `weight_quantizer`;
nothing else names a quantizer.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

from cdsl.contract.ref.mac import MacCore
from cdsl.dsl import ir
from cdsl.errors import CdslError
from cdsl.plugins import import_all
from cdsl.sw.layers import Scales, WeightQuant, weight_quant_options


@dataclass(frozen=True)
class QuantizerContext:
    """What a quantizer factory sees: the layer, its output channels, how scales are found, and the
    MAC core the layer maps to (a quantizer whose codes change at run time needs a core with that
    runtime setting)."""

    layer: ir.Layer
    channels: int
    scales: Scales
    core: MacCore

    @property
    def quant(self) -> ir.Quant:
        return self.layer.annotations.quant

    def base_options(self) -> dict:
        """The keyword arguments of `WeightQuant` for this layer."""
        return weight_quant_options(self.quant, channels=self.channels, scales=self.scales)


_QUANTIZERS: dict[str, Callable[[object, QuantizerContext], WeightQuant]] = {}


def register_quantizer(annotation: str, factory: Callable[[object, QuantizerContext], WeightQuant]) -> None:
    """Layers carrying `@<annotation>` get `factory(that annotation, context)` as their weight quantizer."""
    if annotation not in ir.ANNOTATION_NAMES:
        raise ValueError(f"no annotation @{annotation}")
    if annotation in _QUANTIZERS and _QUANTIZERS[annotation].__qualname__ != factory.__qualname__:
        raise TypeError(f"a weight quantizer is already registered for @{annotation}")
    _QUANTIZERS[annotation] = factory


def _load() -> None:
    import_all(sys.modules[__name__])


def quantizer_annotations() -> frozenset[str]:
    """The annotations that choose a weight quantizer."""
    _load()
    return frozenset(_QUANTIZERS)


def weight_quantizer(layer: ir.Layer, *, channels: int, scales: Scales, core: MacCore) -> WeightQuant | None:
    """The weight quantizer an annotation of `layer` chooses; None when none does (the layer keeps the plain
    `WeightQuant` of its `@quant(w=...)`, if any). Two choosing annotations on one layer are a located error."""
    _load()
    ann = layer.annotations
    chosen = sorted((name for name in _QUANTIZERS if getattr(ann, name) is not None), key=ir.ANNOTATION_NAMES.index)
    if not chosen or ann.quant is None or ann.quant.w is None:  # the checker requires @quant(w=...) with them
        return None
    if len(chosen) > 1:
        first, second = chosen[:2]
        raise CdslError(f"@{first} and @{second} each decide how the weights of layer {layer.name!r} are quantized; "
                        "a layer takes one of them", span=getattr(ann, second).span, expected=f"@{first} or @{second}")
    return _QUANTIZERS[chosen[0]](getattr(ann, chosen[0]), QuantizerContext(layer=layer, channels=channels,
                                                                            scales=scales, core=core))

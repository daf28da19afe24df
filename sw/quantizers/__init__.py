"""Weight quantizers chosen by a layer's annotations: how a weighted layer's float weights become the
integer codes that the forward pass uses and the export writes.

A layer with `@quant(w=...)` and none of the annotations registered here gets the plain quantizer
(`cdsl.sw.layers.WeightQuant`: round half up, clamp, LSQ scales). An annotation that changes how the
codes are formed (`@trunc`: codes truncated at a runtime precision; `@bitsparse`: a width that drops
as the least significant bits vanish) registers a `WeightQuant` subclass in its own module of this
package:

    register_quantizer("trunc", factory)     # factory(annotation, QuantizerContext) -> WeightQuant
    register_quantizer("trunc", factory, problems=check)   # check(annotation, layer, twin) -> [CdslError]

`problems` states, from the spec alone, why the factory would refuse the layer (`quantizer_problems`
collects them, so `cdsl check` reports what training would refuse; the factory raises the first).

Every module here is imported on first use. The dense and conv2d kinds ask `weight_quantizer`;
nothing else names a quantizer.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

from cdsl.sw.cores import CoreTwin
from cdsl.dsl import ir
from cdsl.errors import CdslError
from cdsl.plugins import import_all
from cdsl.sw.layers import Scales, WeightQuant, weight_quant_options


@dataclass(frozen=True)
class QuantizerContext:
    """What a quantizer factory sees: the layer, its output channels, how scales are found, and the
    twin of the MAC core the layer maps to (a quantizer whose codes change at run time needs a core with that
    runtime setting)."""

    layer: ir.Layer
    channels: int
    scales: Scales
    twin: CoreTwin

    @property
    def quant(self) -> ir.Quant:
        return self.layer.annotations.quant

    def base_options(self) -> dict:
        """The keyword arguments of `WeightQuant` for this layer."""
        return weight_quant_options(self.quant, channels=self.channels, scales=self.scales)


_QUANTIZERS: dict[str, Callable[[object, QuantizerContext], WeightQuant]] = {}
_PROBLEMS: dict[str, Callable[[object, ir.Layer, CoreTwin], list[CdslError]]] = {}


def register_quantizer(annotation: str, factory: Callable[[object, QuantizerContext], WeightQuant], *,
                       problems: Callable[[object, ir.Layer, CoreTwin], list[CdslError]] | None = None) -> None:
    """Layers carrying `@<annotation>` get `factory(that annotation, context)` as their weight quantizer;
    `problems(that annotation, layer, core twin)` lists, located, why the factory would refuse the layer."""
    if annotation not in ir.ANNOTATION_NAMES:
        raise ValueError(f"no annotation @{annotation}")
    if annotation in _QUANTIZERS and _QUANTIZERS[annotation].__qualname__ != factory.__qualname__:
        raise TypeError(f"a weight quantizer is already registered for @{annotation}")
    _QUANTIZERS[annotation] = factory
    if problems is not None:
        _PROBLEMS[annotation] = problems


def _load() -> None:
    import_all(sys.modules[__name__])


def quantizer_annotations() -> frozenset[str]:
    """The annotations that choose a weight quantizer."""
    _load()
    return frozenset(_QUANTIZERS)


def _chosen(layer: ir.Layer) -> list[str]:
    """The annotations of `layer` that choose a weight quantizer, in annotation order (none without
    `@quant(w=...)`, which the checker requires with them)."""
    _load()
    ann = layer.annotations
    if ann.quant is None or ann.quant.w is None:
        return []
    return sorted((name for name in _QUANTIZERS if getattr(ann, name) is not None), key=ir.ANNOTATION_NAMES.index)


def quantizer_problems(layer: ir.Layer, twin: CoreTwin) -> list[CdslError]:
    """Why `weight_quantizer` would refuse `layer` (mapped to `twin`'s core), found from the spec alone:
    two choosing annotations, or what the chosen quantizer's own check finds."""
    chosen = _chosen(layer)
    ann = layer.annotations
    if len(chosen) > 1:
        first, second = chosen[:2]
        return [CdslError(f"@{first} and @{second} each decide how the weights of layer {layer.name!r} are quantized; "
                          "a layer takes one of them", span=getattr(ann, second).span, expected=f"@{first} or @{second}")]
    check = _PROBLEMS.get(chosen[0]) if chosen else None
    return list(check(getattr(ann, chosen[0]), layer, twin)) if check is not None else []


def weight_quantizer(layer: ir.Layer, *, channels: int, scales: Scales, twin: CoreTwin) -> WeightQuant | None:
    """The weight quantizer an annotation of `layer` chooses; None when none does (the layer keeps the plain
    `WeightQuant` of its `@quant(w=...)`, if any). What `quantizer_problems` finds is raised (the first)."""
    problems = quantizer_problems(layer, twin)
    if problems:
        raise problems[0]
    chosen = _chosen(layer)
    if not chosen:
        return None
    ann = layer.annotations
    return _QUANTIZERS[chosen[0]](getattr(ann, chosen[0]), QuantizerContext(layer=layer, channels=channels,
                                                                            scales=scales, twin=twin))

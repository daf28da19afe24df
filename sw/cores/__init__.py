"""Training twins of the MAC cores: how a weighted layer's products behave in the forward pass, and
which `cdsl.contract.ref.mac.MacCore` its payload gets at export.

A core is chosen by a mapping annotation on the layer (`@bitserial`, `@binary`, `@aqfp`, ...). Each
core's twin lives in its own module of this package and registers itself by its annotation name with
`register_core`; every module here is imported on first use. A layer with none of them gets the
exact twin and the bit-parallel core. An annotation that refines another (`@aqfp` needs `@binary`)
registers as covering it, and a layer carrying both gets the refining twin. Dense and conv2d
delegate to the twin; neither names a core.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

from cdsl.contract.ref.mac import MacCore, ParallelCore
from cdsl.dsl import ir
from cdsl.plugins import import_all

if TYPE_CHECKING:
    from cdsl.contract.intmodel import QType, Setting
    from cdsl.errors import CdslError
    from cdsl.sw.layers import Products, QWeighted
    from cdsl.sw.registry import ExportContext


class CoreTwin(nn.Module):
    """The exact products of a bit-parallel MAC: the layer's float forward, unchanged."""

    core_type: type = ParallelCore  # the contract's core class this twin exports

    def products(self, p: "Products") -> torch.Tensor:
        """The layer's output before activation quantization (`cdsl.sw.layers.Products` says what it sees)."""
        return p.exact()

    def configure(self, model: ir.Model, layer: ir.Layer) -> None:
        """Called once by the layer's kind when the twin is placed in `layer` of `model`: a twin holding
        per-layer parameters (an ADC step per crossbar column) sizes them here from the layer's shapes,
        before any optimizer or checkpoint sees the module. Nothing to do by default."""

    def core(self) -> MacCore:
        return ParallelCore()

    def settings(self, *, w_bits: int) -> tuple["Setting", ...]:
        """The runtime settings of the core this twin exports (known before training: a weight quantizer
        whose codes change at run time asks for them)."""
        return self.core().settings(w_bits=w_bits)

    def export(self, module: "QWeighted", layer: ir.Layer,
               ctx: "ExportContext") -> "tuple[dict[str, Any], QType] | None":
        """The weighted payload's fields and the output type, for a core whose layer needs other integers
        than weight codes and a requantization (binary weights and a threshold); None: the standard export
        (`cdsl.sw.weighted`)."""
        return None

    def export_problems(self, model: ir.Model, layer: ir.Layer) -> "list[CdslError] | None":
        """Why a layer with this core has no integer form, from the spec alone, for a core with an export of
        its own; None: the standard export's rules apply."""
        return None


_CORES: dict[str, Callable[[object], CoreTwin]] = {}
_COVERED: dict[str, tuple[str, ...]] = {}


def register_core(annotation: str, factory: Callable[[object], CoreTwin], *, covers: tuple[str, ...] = ()) -> None:
    """Layers carrying `@<annotation>` get `factory(that annotation)` as their core twin; on a layer that
    also carries one of `covers`, this twin stands for both."""
    if annotation in _CORES:
        raise TypeError(f"a MAC core is already registered for @{annotation}")
    _CORES[annotation] = factory
    _COVERED[annotation] = tuple(covers)


def _load() -> None:
    import_all(sys.modules[__name__])


def core_annotations() -> frozenset[str]:
    """The mapping annotations that select a MAC core."""
    _load()
    return frozenset(_CORES)


def twin_for(annotations: ir.Annotations) -> CoreTwin:
    """The twin of the core the layer's mapping annotation selects (exact when there is none)."""
    _load()
    present = [name for name in _CORES if getattr(annotations, name) is not None]
    chosen = [name for name in present if not any(name in _COVERED[other] for other in present)]
    if len(chosen) > 1:  # the checker refuses such specs; a built IR could still carry them
        raise ValueError(f"a layer maps to one MAC core, got @{' and @'.join(chosen)}")
    return _CORES[chosen[0]](getattr(annotations, chosen[0])) if chosen else CoreTwin()


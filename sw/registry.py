"""The software path's kinds: how each IR op trains and exports, found by the op's type.

A kind lives in its own module under `cdsl.sw.kinds` and registers itself:

    @register(ir.Dense)
    class DenseKind(SwKind):
        annotations = frozenset({"quant", "prune", "bitserial"})
        def build(self, model, layer, scales): ...       # -> a LayerModule
        def export(self, module, layer, ctx): ...         # -> (payload, output QType)

`build`, `export` and `Net` ask `sw_kind(op)`; they never name a kind. Every module of
`cdsl.sw.kinds` is imported on first lookup, so a new kind is a new file there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, TypeVar

import torch
from torch import nn

from cdsl.dsl import ir
from cdsl.errors import CdslError
from cdsl.plugins import import_all

if TYPE_CHECKING:
    from cdsl.contract.intmodel import Payload, QType
    from cdsl.sw.layers import Grid, Scales

K = TypeVar("K", bound="SwKind")


class LayerModule(nn.Module):
    """A layer of the trainable network: forward(xs, grids) -> (y, grid).

    `xs` are the layer's input tensors (float, batch first), `grids` their integer grids (None
    where a tensor is not on one). The output grid is None when the output is float. Modules
    with annotation switches derive from `cdsl.sw.layers.Compressible` as well.
    """

    def forward(self, xs: list[torch.Tensor], grids: list["Grid | None"]) -> tuple[torch.Tensor, "Grid | None"]:
        raise NotImplementedError


@dataclass(frozen=True)
class ExportContext:
    """What a kind's export sees: the IR model, the layer's input grids and integer types, and its
    output grid (from one fake-quant forward pass in eval mode)."""

    model: ir.Model
    in_grids: tuple["Grid", ...]
    in_types: tuple["QType", ...]
    out_grid: "Grid | None"


class SwKind:
    """The training and export of one IR op type (see the module docstring)."""

    op: type
    # Annotations this kind implements in training (a hardware mapping with no training effect,
    # such as bitserial, counts): any other annotation on the layer is refused at its span.
    annotations: frozenset[str] = frozenset()
    # Whether the kind has an integer form (export). False: `export` raises a located CdslError.
    exports: bool = True
    # The layer reads only the non-negative part of its input (a ReLU): a producer whose only
    # readers do so may quantize its output unsigned.
    reads_nonnegative_only: bool = False
    # The layer reads only the sign of its input (x >= 0 or not): a binary layer, whose integer output is
    # the margin against its threshold, may feed only such layers.
    reads_sign_only: bool = False
    # The layer reads only the class token (row 0) of its token input: it may follow an `@tokens`
    # encoder, whose output has a token count that varies per sample.
    reads_class_token_only: bool = False
    # The layer reads a token stream whose token count varies per sample (its training forward takes
    # the counts from `Grid.tokens`, its golden step from `Payload.run_tokens`): it may follow an
    # `@tokens` encoder too.
    reads_token_counts: bool = False
    # Annotations whose parameters only a training stage that activates them learns (a token selector):
    # a spec whose stages never activate one has no integer form for the layer (`cdsl.flow.spec_problems`).
    learned_in_stage: frozenset[str] = frozenset()

    def build(self, model: ir.Model, layer: ir.Layer, scales: "Scales") -> LayerModule:
        raise NotImplementedError

    def problems(self, model: ir.Model, layer: ir.Layer) -> list[tuple[str, CdslError]]:
        """What keeps this layer from training ("train") or from an integer form ("export"), each a
        located error; found from the spec alone, before any training."""
        out = [("train", CdslError(
            f"@{name} is not yet supported by the software path (layer {layer.name!r})",
            span=getattr(layer.annotations, name).span,
            expected="the annotations implemented so far (README: What works today)"))
            for name in layer.annotations.present() if name not in self.annotations]
        if not self.exports:
            out.append(("export", self.no_integer_form(layer)))
        return out

    def payload_type(self, layer: ir.Layer) -> type | None:
        """The payload type this kind exports for `layer` (None: it has no integer form)."""
        return None

    def core_type(self, layer: ir.Layer) -> type | None:
        """The MAC core type of the layer's payload, for kinds that have one."""
        return None

    def export(self, module: LayerModule, layer: ir.Layer, ctx: ExportContext) -> tuple["Payload", "QType"]:
        """The layer's payload and output type, from its trained module."""
        raise self.no_integer_form(layer)

    def no_integer_form(self, layer: ir.Layer) -> CdslError:
        """The located error for a kind that cannot be exported (`exports` False)."""
        return CdslError(f"layer {layer.name!r}: {type(layer.op).__name__} has no integer form yet", span=layer.span)


_KINDS: dict[type, SwKind] = {}
_LOADED = False


def register(op: type) -> Callable[[type[K]], type[K]]:
    """Class decorator: `op` (an IR op type) trains and exports with this kind."""

    def add(cls: type[K]) -> type[K]:
        if op in _KINDS and type(_KINDS[op]).__qualname__ != cls.__qualname__:
            raise TypeError(f"the software kind of {op.__name__} is already {type(_KINDS[op]).__name__}")
        cls.op = op
        _KINDS[op] = cls()
        return cls

    return add


def _load() -> None:
    global _LOADED
    if not _LOADED:
        from cdsl.sw import kinds

        import_all(kinds)
        _LOADED = True


def sw_kind(op: ir.Op) -> SwKind:
    """The kind that trains and exports `op`."""
    _load()
    kind = _KINDS.get(type(op))
    if kind is None:
        raise TypeError(f"no software kind for {type(op).__name__} (add a module to cdsl.sw.kinds)")
    return kind


def all_kinds() -> dict[type, SwKind]:
    _load()
    return dict(_KINDS)

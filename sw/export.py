"""Trained Net -> IntModel (the integer model the golden model and the RTL consume).

One fake-quant forward pass in eval mode records every tensor's integer grid; then each layer's
kind (`cdsl.sw.registry.sw_kind(op).export`) turns its trained module into the kind's typed
payload and output type. See each kind (and `cdsl.sw.weighted` for dense/conv2d) for what its
integers are; nothing here names a kind.
"""

from __future__ import annotations

import torch

from cdsl.contract.intmodel import IntInput, IntLayer, IntModel, QType
from cdsl.errors import CdslError
from cdsl.sw.build import Net
from cdsl.sw.layers import ActQuant, Grid
from cdsl.sw.registry import ExportContext, sw_kind


def export(model: Net) -> IntModel:
    ir_model = model.model
    for lay in ir_model.layers:
        kind = sw_kind(lay.op)
        if not kind.exports:
            raise kind.no_integer_form(lay)
    for mod in model.quantizers():
        if not bool(mod.calibrated) and (isinstance(mod, ActQuant) or mod.learned):
            raise CdslError(f"model {ir_model.name!r} was never trained with quantization active, its scales are not set",
                            expected="a training stage with compress including quant")

    saved_active, saved_mode = model.active, model.training
    model.set_compress(None)
    model.eval()
    try:
        with torch.no_grad():
            sample = {i.name: torch.zeros(1, *i.shape) for i in ir_model.inputs}
            _, grids = model.run(sample)
            types = {i.name: grid_type(grids[i.name], i.name) for i in ir_model.inputs}
            layers = []
            for lay in ir_model.topo_order():
                ctx = ExportContext(model=ir_model, in_grids=tuple(grids[n] for n in lay.inputs),
                                    in_types=tuple(types[n] for n in lay.inputs), out_grid=grids[lay.name])
                payload, out_type = sw_kind(lay.op).export(model.blocks[lay.name], lay, ctx)
                types[lay.name] = out_type
                layers.append(IntLayer(
                    name=lay.name, inputs=tuple(lay.inputs), in_shapes=tuple(tuple(ir_model.shape_of(n)) for n in lay.inputs),
                    in_types=ctx.in_types, out_shape=tuple(lay.shape), out_type=out_type, payload=payload))
    finally:
        model.set_compress(saved_active)
        model.train(saved_mode)

    inputs = tuple(IntInput(i.name, tuple(i.shape), types[i.name]) for i in ir_model.inputs)
    return IntModel(ir_model.name, inputs, tuple(layers), tuple(ir_model.outputs))


def grid_type(grid: Grid | None, name: str) -> QType:
    """The integer type of a tensor on `grid` (an error if the tensor is float)."""
    if grid is None:
        raise CdslError(f"tensor {name!r} is not on an integer grid (an input of it is not quantized)")
    return QType(grid.bits, grid.signed, float(grid.scale))

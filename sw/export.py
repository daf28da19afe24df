"""Trained Net -> IntModel (the integer model the golden model and the RTL consume).

The integer weights, bias codes and scales are taken from the very computation the
fake-quant forward pass uses (one forward pass records every tensor's grid), so the export
cannot drift from training:
- weight = clamp(floor(w * mask / w_scale + 0.5), -2**(b-1), 2**(b-1) - 1), pruned entries 0;
- bias = floor(bias / (in_scale * w_scale) + 0.5), in accumulator units;
- requant (M, S) = quantize_multiplier(in_scale * w_scale[c] / out_scale) per channel
  (one entry for per-tensor weights); qmin/qmax of the output activation type.
- An output layer with weight quantization but no activation quantization (quant(w=...) only)
  keeps the accumulator as its output: a 32-bit signed type, M = 1, S = 0 (per-tensor weights
  only). A hidden layer must quantize its activations (a 32-bit accumulator feeding the next
  layer would overflow the int64 requantization product).
- avgpool: requant = quantize_multiplier(1 / kernel**2), the input type's bounds.
- sign: output type 2-bit signed, scale 1 (values -1, +1).
Integer export of patch_embed / encoder / cls_head needs integer softmax, LayerNorm and GELU
and is not supported yet (CdslError).
"""

from __future__ import annotations

import numpy as np
import torch

from cdsl.dsl import ir
from cdsl.errors import CdslError
from cdsl.contract.ref.pool import avg_multiplier
from cdsl.contract.ref.requant import quantize_multiplier
from cdsl.sw.build import Net
from cdsl.contract.intmodel import IntInput, IntLayer, IntModel, QType, Requant
from cdsl.sw.layers import ActQuant, Grid, QWeighted, WeightQuant

ACC_BITS = 32


def export(model: Net) -> IntModel:
    ir_model = model.model
    for lay in ir_model.layers:
        if isinstance(lay.op, (ir.PatchEmbed, ir.Encoder, ir.ClsHead)):
            kind = {ir.PatchEmbed: "patch_embed", ir.Encoder: "encoder", ir.ClsHead: "cls_head"}[type(lay.op)]
            raise CdslError(
                f"integer export of {kind} (layer {lay.name!r}) is not supported yet "
                "(it needs integer softmax, LayerNorm and GELU)",
                span=lay.span,
            )
        if isinstance(lay.op, ir.WEIGHTED_OPS):
            q = lay.annotations.quant
            if q is None or q.w is None:
                raise CdslError(
                    f"layer {lay.name!r} has no weight quantization, so it has no integer form",
                    span=(q.span if q is not None else lay.span),
                    expected="@quant(w=..., a=...) on every weighted layer",
                )
    for mod in model.modules():
        if isinstance(mod, (ActQuant, WeightQuant)) and not bool(mod.calibrated) and (
            isinstance(mod, ActQuant) or mod.learned
        ):
            raise CdslError(
                f"model {ir_model.name!r} was never trained with quantization active, its scales are not set",
                expected="a training stage with compress including quant",
            )

    saved_active, saved_mode = model.active, model.training
    model.set_compress(None)
    model.eval()
    try:
        with torch.no_grad():
            sample = {i.name: torch.zeros(1, *i.shape) for i in ir_model.inputs}
            _, grids = model.run(sample)
            layers = tuple(_export_layer(model, lay, grids) for lay in ir_model.topo_order())
    finally:
        model.set_compress(saved_active)
        model.train(saved_mode)

    inputs = tuple(
        IntInput(i.name, tuple(i.shape), QType(i.dtype.bits, i.dtype.signed, 2.0 ** -i.dtype.frac)) for i in ir_model.inputs
    )
    classes = 10
    if len(ir_model.outputs) == 1 and len(ir_model.shape_of(ir_model.outputs[0])) == 1:
        classes = ir_model.shape_of(ir_model.outputs[0])[0]
    return IntModel(ir_model.name, inputs, layers, tuple(ir_model.outputs), classes=classes)


def _qtype(grid: Grid | None, lay_name: str) -> QType:
    if grid is None:
        raise CdslError(f"tensor {lay_name!r} is not on an integer grid (an input of it is not quantized)")
    return QType(grid.bits, grid.signed, float(grid.scale))


def _export_layer(model: Net, lay: ir.Layer, grids: dict[str, Grid | None]) -> IntLayer:
    src = lay.inputs[0]
    ir_model = model.model
    in_type = _qtype(grids[src], src)
    common = dict(
        name=lay.name, op=lay.op, inputs=tuple(lay.inputs), in_shapes=(tuple(ir_model.shape_of(src)),),
        out_shape=tuple(lay.shape), in_types=(in_type,), annotations=lay.annotations,
    )
    op = lay.op
    if isinstance(op, (ir.Dense, ir.Conv2d)):
        return _export_weighted(ir_model, model.blocks[lay.name], lay, grids[src], grids[lay.name], in_type, common)
    if isinstance(op, ir.Sign):
        return IntLayer(out_type=QType(2, True, 1.0), **common)
    if isinstance(op, ir.Pool) and op.kind is ir.PoolKind.AVG:
        m, s = avg_multiplier(op.kernel)
        rq = Requant(np.array([m], dtype=np.int64), np.array([s], dtype=np.int64), in_type.qmin, in_type.qmax)
        return IntLayer(out_type=in_type, requant=rq, **common)
    # relu, maxpool, flatten: same type
    return IntLayer(out_type=in_type, **common)


def _export_weighted(
    ir_model: ir.Model, mod: QWeighted, lay: ir.Layer, in_grid: Grid, out_grid: Grid | None, in_type: QType, common
) -> IntLayer:
    _w_used, s_w, codes, _b_used, b_codes = mod.quantized(in_grid)
    weight = codes.to(torch.int64).numpy()
    w_scale = s_w.detach().to(torch.float64).numpy().reshape(-1)
    bias = None if b_codes is None else b_codes.to(torch.int64).numpy()
    mask = mod.mask.bool().numpy().copy() if lay.annotations.prune is not None else None
    if mask is not None:
        assert not np.any(weight[~mask]), "pruned weights must be zero"
    in_scale = float(in_grid.scale)
    if mod.aq is not None:
        out_scale = float(out_grid.scale)
        out_type = QType(mod.aq.bits, mod.aq.signed, out_scale)
        pairs = [quantize_multiplier(in_scale * float(s) / out_scale) for s in w_scale]
        mult = np.array([p[0] for p in pairs], dtype=np.int64)
        shift = np.array([p[1] for p in pairs], dtype=np.int64)
    else:
        if ir_model.consumers(lay.name):
            raise CdslError(
                f"layer {lay.name!r} has no activation quantization, so its output stays a 32-bit accumulator; "
                "only an output layer may do that",
                span=lay.annotations.quant.span, expected=f"@quant(w={lay.annotations.quant.w}, a=...)",
            )
        if w_scale.size != 1:
            raise CdslError(
                f"layer {lay.name!r}: per-channel weights need an activation quantization (quant(a=...))",
                span=lay.annotations.quant.span,
            )
        out_type = QType(ACC_BITS, True, in_scale * float(w_scale[0]))
        mult, shift = np.ones(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    rq = Requant(mult, shift, out_type.qmin, out_type.qmax)
    return IntLayer(
        out_type=out_type, w_bits=mod.wq.bits, weight=weight, w_scale=w_scale, bias=bias, mask=mask, requant=rq,
        **common,
    )

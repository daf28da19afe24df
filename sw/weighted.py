"""Build and export shared by the weighted kinds (dense, conv2d).

Export takes the integer weights, bias codes and scales from the very computation the fake-quant
forward pass uses (`WeightedParams.quantized`), so the export cannot drift from training:
- weight = clamp(floor(w * mask / w_scale + 0.5), -2**(b-1), 2**(b-1) - 1), pruned entries 0,
  as the [out, K] matrix the hardware sees (a conv kernel in im2col order);
- bias = floor(bias / (in_scale * w_scale) + 0.5), in accumulator units;
- requant (M, S) = quantize_multiplier(in_scale * w_scale[c] / out_scale) per channel (one entry
  for per-tensor weights); qmin/qmax of the output activation type;
- an output layer with weight quantization but no activation quantization (quant(w=...) only)
  keeps the accumulator as its output: a 32-bit signed type, M = 1, S = 0 (per-tensor weights
  only). A hidden layer must quantize its activations;
- the MAC core comes from the layer's core twin (`cdsl.sw.cores`), which may replace all of this
  with its own integers (`CoreTwin.export`: binary layers);
- `w_bits` is the width of the layer's weight quantizer (`cdsl.sw.quantizers`) when training ends:
  the spec's `w`, or fewer bits where a quantizer dropped some (`@bitsparse`).
"""

from __future__ import annotations

import numpy as np
import torch

from cdsl.contract.intmodel import QType, Requant
from cdsl.contract.ref.requant import quantize_multiplier
from cdsl.dsl import ir
from cdsl.errors import CdslError
from cdsl.sw.cores import core_annotations, twin_for
from cdsl.sw.layers import ACC_BITS, QWeighted, Scales
from cdsl.sw.quantizers import quantizer_annotations, quantizer_problems, weight_quantizer
from cdsl.sw.registry import ExportContext, SwKind, sw_kind


def output_signed(model: ir.Model, lay: ir.Layer) -> bool:
    """Signedness of a layer's quantized output: Quant.signed, or unsigned when its only readers read
    the non-negative part (ReLUs) and it is not a model output."""
    q = lay.annotations.quant
    if q is not None and q.signed is not None:
        return q.signed
    consumers = model.consumers(lay.name)
    nonneg_only = bool(consumers) and all(sw_kind(c.op).reads_nonnegative_only for c in consumers)
    return not (nonneg_only and lay.name not in model.outputs)


class WeightedKind(SwKind):
    """Dense and conv2d: quantization (with the weight quantizer an annotation chooses), pruning and a MAC
    core chosen by a mapping annotation."""

    @property
    def annotations(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset({"quant", "prune"}) | core_annotations() | quantizer_annotations()

    def module(self, module_type: type[QWeighted], model: ir.Model, lay: ir.Layer, scales: Scales,
               ref: torch.nn.Module) -> QWeighted:
        """A `module_type` (the kind's QWeighted subclass) around the torch layer `ref`, with the layer's
        quantization, pruning and MAC-core twin."""
        ann = lay.annotations
        core = twin_for(ann)
        core.configure(model, lay)
        wq = weight_quantizer(lay, channels=ref.weight.shape[0], scales=scales, twin=core)
        return module_type(ref, core=core, quant=ann.quant, prune=ann.prune, scales=scales,
                           out_signed=output_signed(model, lay), weight_quant=wq)

    payload: type  # the kind's payload class

    def payload_type(self, layer):
        return self.payload

    def core_type(self, layer):
        return type(twin_for(layer.annotations)).core_type

    def export_problems(self, model: ir.Model, layer: ir.Layer) -> list[CdslError]:
        """Why the layer has no integer form, from the spec alone (export raises the first of these); a core
        twin with integers of its own states its own (`CoreTwin.export_problems`)."""
        own = twin_for(layer.annotations).export_problems(model, layer)
        if own is not None:
            return own
        q = layer.annotations.quant
        if q is None or q.w is None:
            return [CdslError(f"layer {layer.name!r} has no weight quantization, so it has no integer form",
                              span=(q.span if q is not None else layer.span),
                              expected="@quant(w=..., a=...) on every weighted layer")]
        if q.a is None and model.consumers(layer.name):
            return [CdslError(
                f"layer {layer.name!r} has no activation quantization, so its output stays a 32-bit accumulator; "
                "only an output layer may do that", span=q.span, expected=f"@quant(w={q.w}, a=...)")]
        if q.a is None and q.per is ir.Granularity.CHANNEL:
            return [CdslError(f"layer {layer.name!r}: per-channel weights need an activation quantization "
                              "(quant(a=...))", span=q.span, expected=f"@quant(w={q.w}, a=..., per=channel)")]
        return []

    def problems(self, model, layer):
        found = super().problems(model, layer)
        if not found:  # the annotations are the kind's: can their weight quantizer be built?
            found += [("train", e) for e in quantizer_problems(layer, twin_for(layer.annotations))]
        return found + [("export", e) for e in self.export_problems(model, layer)]

    def export(self, module: QWeighted, layer: ir.Layer, ctx: ExportContext):
        problems = self.export_problems(ctx.model, layer)
        if problems:
            raise problems[0]
        custom = module.core.export(module, layer, ctx)
        if custom is not None:
            return custom
        (in_grid,) = ctx.in_grids
        _w_used, s_w, codes, _b_used, b_codes = module.quantized(in_grid)
        out_channels = codes.shape[0]
        weight = codes.to(torch.int64).reshape(out_channels, -1).numpy()
        w_scale = s_w.detach().to(torch.float64).numpy().reshape(-1)
        bias = None if b_codes is None else b_codes.to(torch.int64).numpy()
        mask = module.mask.bool().reshape(out_channels, -1).numpy().copy() if layer.annotations.prune is not None else None
        if mask is not None and np.any(weight[~mask]):
            raise AssertionError(f"layer {layer.name!r}: pruned weights must be zero")
        in_scale = float(in_grid.scale)
        if module.aq is not None:
            out_type = QType(module.aq.bits, module.aq.signed, float(ctx.out_grid.scale))
            pairs = [quantize_multiplier(in_scale * float(s) / out_type.scale) for s in w_scale]
            mult = np.array([p[0] for p in pairs], dtype=np.int64)
            shift = np.array([p[1] for p in pairs], dtype=np.int64)
        else:  # an output layer that keeps its accumulator (export_problems allowed it)
            out_type = QType(ACC_BITS, True, in_scale * float(w_scale[0]))
            mult, shift = np.ones(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
        fields = dict(weight=weight, bias=bias, w_bits=module.wq.bits, w_scale=w_scale, mask=mask,
                      requant=Requant(mult, shift, out_type.qmin, out_type.qmax), core=module.core.core())
        return fields, out_type

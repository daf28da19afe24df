"""`cdsl eval RUN` on a run with `@bitsparse` layers: the widths MSQ reached, and MSQ against plain QAT.

- Bits per layer: the spec's `w`, the exported `w_bits`, each drop (epoch, widths, the layer's Hessian
  sensitivity tr(H)/n and LSB sparsity when it dropped), and the plane structure the bit-serial MAC
  sees (`plane_masks`: the mean number of nonzero planes per row, and the rows with a zero plane,
  which the MAC skips).
- Against plain QAT: the same spec without `@bitsparse`, same seed and epochs (`_baseline`: found in
  RUN/baselines/no-bitsparse, or trained there): average weight bits (parameter-weighted, over the
  `@bitsparse` layers), weight memory, integer golden accuracy, trainable parameters and training time
  of the compressed network (its metrics.json). Peak memory needs a fresh process per training:
  `benchmarks/bits.py` measures it.
"""

from __future__ import annotations

import json

import numpy as np

from cdsl.contract.golden import predict, quantize_input
from cdsl.contract.ref.bitserial_mac import plane_masks
from cdsl.errors import CdslError
from cdsl.sw.build import build
from cdsl.sw.evaluations import EvalContext, Section, register_evaluation
from cdsl.sw.evaluations._baseline import baseline


def trainable_parameters(net) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def weight_bits(intmodel, names) -> tuple[int, int]:
    """(sum of w_bits * weights, weights) over the layers `names`."""
    pays = [intmodel.layer(n).payload for n in names]
    return sum(p.w_bits * p.weight.size for p in pays), sum(p.weight.size for p in pays)


def golden_accuracy(intmodel, dataset) -> float:
    x = quantize_input(intmodel, dataset.x_test)
    return float((predict(intmodel, x) == dataset.y_test).double().mean())


def training_seconds(run_dir) -> float | None:
    """The training time of a run's compressed network (its metrics.json), if recorded."""
    path = run_dir / "metrics.json"
    return json.loads(path.read_text()).get("compressed", {}).get("seconds") if path.is_file() else None


def _widths(spec_bits: int, history) -> str:
    """The widths the layer went through: "8->6->4" (just "8" without a drop)."""
    return "->".join(str(w) for w in [spec_bits, *(h["to"] for h in history)])


@register_evaluation("bitsparse")
def bit_sparsity(ctx: EvalContext) -> list[Section]:
    if ctx.intmodel is None:
        raise CdslError(f"{ctx.run_dir} has no integer model: no widths to report", name="cdsl eval")
    names = [lay.name for lay in ctx.spec.model.layers if lay.annotations.bitsparse is not None]
    rows = []
    for name in names:
        pay = ctx.intmodel.layer(name).payload
        masks = plane_masks(pay.weight, pay.w_bits)
        planes = np.array([bin(int(m)).count("1") for m in masks])
        q = ctx.net.blocks[name].wq
        rows.append((name, _widths(ctx.spec.model.layer(name).annotations.quant.w, q.history), int(pay.weight.size),
                     ", ".join(str(h["epoch"] + 1) for h in q.history) or "-",
                     "n/a" if q.sensitivity is None else f"{q.sensitivity:.2g}",
                     f"{planes.mean():.2f}", f"{int((planes < pay.w_bits).sum())}/{len(planes)}"))
    per_layer = Section(
        title="MSQ: weight bits per layer",
        columns=("layer", "bits", "weights", "drop epochs", "tr(H)/n", "planes/row", "rows skip"),
        rows=tuple(rows),
        notes=("bits: from the spec's w to the exported w_bits; tr(H)/n: the Hessian sensitivity at the last check "
               "(Hutchinson), below the mean a layer drops 2 bits at once",
               "planes/row: weight bit-planes with a set bit per output row (plane_masks); rows skip: rows with a "
               "zero plane, which the bit-serial MAC skips"))

    base = baseline(ctx, "bitsparse")
    mine_bits, count = weight_bits(ctx.intmodel, names)
    base_bits, _ = weight_bits(base.intmodel, names)
    all_weighted = [lay.name for lay in ctx.spec.model.layers if lay.annotations.quant is not None
                    and lay.annotations.quant.w is not None]
    seconds = (training_seconds(ctx.run_dir), base.metrics["compressed"]["seconds"])
    comparison = Section(
        title="MSQ against plain QAT of the same network",
        columns=("", "MSQ", "plain QAT"),
        rows=(("average weight bits (@bitsparse layers)", f"{mine_bits / count:.2f}", f"{base_bits / count:.2f}"),
              ("weight memory, all layers (kbit)", f"{weight_bits(ctx.intmodel, all_weighted)[0] / 1000:.1f}",
               f"{weight_bits(base.intmodel, all_weighted)[0] / 1000:.1f}"),
              ("integer golden accuracy", f"{100 * golden_accuracy(ctx.intmodel, ctx.dataset):.2f}%",
               f"{100 * golden_accuracy(base.intmodel, ctx.dataset):.2f}%"),
              ("trainable parameters", trainable_parameters(ctx.net), trainable_parameters(build(base.spec))),
              ("training time, compressed network (s)", "n/a" if seconds[0] is None else f"{seconds[0]:.1f}",
               f"{seconds[1]:.1f}")),
        notes=(f"plain QAT: {base.how}",
               "peak memory needs a fresh process per training: python benchmarks/bits.py measures it"))
    return [per_layer, comparison]

"""`cdsl eval RUN --precisions 8,6,4,2`: accuracy at each runtime precision of the `@trunc` layers, for the
truncation-ready model and for the conventionally trained baseline truncated the same way.

At precision p every `@trunc` layer (B-bit weights) multiplies by `(w >> (B - p)) << (B - p)` with its
requantization unchanged: the bit-serial MAC stopping after p planes, the register setting
`LAYER.precision = p` (a layer narrower than p runs in full). Accuracies are the integer golden
model's on the whole test split; the fake-quant column is the training network at the same
precision (equal to golden up to the rare rounding tie). The baseline is the same spec without
`@trunc`, same seed and epochs (`_baseline`: found in RUN/baselines/no-trunc, or trained there).
"""

from __future__ import annotations

from cdsl.contract.golden import predict, quantize_input
from cdsl.errors import CdslError
from cdsl.sw.evaluations import EvalContext, Section, register_evaluation
from cdsl.sw.evaluations._baseline import baseline
from cdsl.sw.quantizers.trunc import trunc_quantizers, truncated
from cdsl.sw.train import accuracy


def parse_precisions(text: str | None, *, default: tuple[int, ...], widest: int) -> tuple[int, ...]:
    """`8,6,4,2` -> (8, 6, 4, 2); None -> `default`. Each must lie in 1..widest."""
    if text is None:
        return default
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or any(not 1 <= v <= widest for v in values):
        raise CdslError(f"--precisions {text!r}: expected whole numbers from 1 to {widest} separated by commas, "
                        "e.g. 8,6,4,2", name="cdsl eval")
    return values


def accuracy_at(intmodel, layers: dict[str, int], precision: int, x_float, y) -> float:
    """Golden accuracy with every layer of `layers` {name: w_bits} at `precision` (capped at its width)."""
    settings = {name: {"precision": min(precision, bits)} for name, bits in layers.items()}
    x = quantize_input(intmodel, x_float)
    return float((predict(intmodel, x, settings=settings) == y).double().mean())


@register_evaluation("trunc", options={"precisions": "runtime weight precisions of the @trunc layers to evaluate, "
                                                     "e.g. 8,6,4,2 (default: the layers' sets)"})
def truncation(ctx: EvalContext) -> list[Section]:
    if ctx.intmodel is None:
        raise CdslError(f"{ctx.run_dir} has no integer model: nothing to truncate", name="cdsl eval")
    names = [lay.name for lay in ctx.spec.model.layers if lay.annotations.trunc is not None]
    layers = {name: ctx.intmodel.layer(name).payload.w_bits for name in names}
    sets = {p for q in trunc_quantizers(ctx.net) for p in q.precisions}
    precisions = parse_precisions(ctx.options.get("precisions"), default=tuple(sorted(sets, reverse=True)),
                                  widest=max(layers.values()))
    base = baseline(ctx, "trunc")
    data = ctx.dataset
    rows = []
    for p in precisions:
        mine = accuracy_at(ctx.intmodel, layers, p, data.x_test, data.y_test)
        theirs = accuracy_at(base.intmodel, layers, p, data.x_test, data.y_test)
        with truncated(ctx.net, p):
            fake = accuracy(ctx.net, data.x_test, data.y_test)
        rows.append((p, f"{100 * mine:.2f}%", f"{100 * theirs:.2f}%", f"{100 * (mine - theirs):+.2f}",
                     f"{100 * fake:.2f}%"))
    return [Section(
        title=f"runtime truncation of {', '.join(names)}: integer golden accuracy, {len(data.y_test)} test samples",
        columns=("precision", "TruncQuant", "conventional", "difference", "TruncQuant fake-quant"),
        rows=tuple(rows),
        notes=("difference in points; precision p: weights (w >> (B-p)) << (B-p), requantization unchanged "
               "(the register LAYER.precision=p of the bit-serial MAC), every @trunc layer at p; trained for "
               + ", ".join(f"{name} {list(ctx.net.blocks[name].wq.precisions)}" for name in names)
               + " (a layer's training pass at p runs it at the lowest of its own set at or above p)",
               f"conventional: {base.how}"))]

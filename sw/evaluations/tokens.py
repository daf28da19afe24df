"""`cdsl eval RUN --keeps 1.0,0.7,0.5`: accuracy, measured keep ratio and MACs per block of a run
whose encoders carry `@tokens` selectors, and of the same spec without selectors.

For each keep ratio r, every selector's threshold is set (a runtime value of the trained selector, no
retraining) to the integer score that keeps a share r of the candidates over the training split
(r = 1.0: threshold 0, every token kept). The integer golden model then runs the test split; the
measured keep ratio is the mean over test samples of kept candidates / candidates, and the MACs of
each block are counted per sample from its actual token count (class token, kept tokens, package
token), then averaged. The row "as trained" uses the threshold training settled on. The baseline
"no selector" is the spec without `@tokens`, same seed and epochs (`_baseline`). The selectors' own
scoring MLPs are not counted in the MACs (as `cdsl check` does).
"""

from __future__ import annotations

import dataclasses

import torch

from cdsl.contract.golden import argmax_lowest, golden, quantize_input
from cdsl.contract.intmodel import IntModel
from cdsl.contract.ref.encoder import kept_counts, selections
from cdsl.contract.ref.token_selector import MAX_THRESHOLD
from cdsl.dsl import ir
from cdsl.errors import CdslError
from cdsl.sw.evaluations import EvalContext, Section, register_evaluation
from cdsl.sw.evaluations._baseline import baseline


def parse_keeps(text: str | None) -> tuple[float, ...]:
    if text is None:
        return (1.0, 0.7, 0.5)
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or any(not 0.0 < v <= 1.0 for v in values):
        raise CdslError(f"--keeps {text!r}: expected keep ratios in (0, 1] separated by commas, e.g. 1.0,0.7,0.5",
                        name="cdsl eval")
    return values


def selectors_of(im: IntModel) -> dict[str, object]:
    """{layer: its TokenSelector} for every encoder with a selector, in layer order."""
    return {lay.name: lay.payload.selector for lay in im.layers if getattr(lay.payload, "selector", None) is not None}


def with_thresholds(im: IntModel, thresholds: dict[str, int]) -> IntModel:
    layers = tuple(dataclasses.replace(lay, payload=dataclasses.replace(
        lay.payload, selector=dataclasses.replace(lay.payload.selector, threshold=thresholds[lay.name])))
        if lay.name in thresholds else lay for lay in im.layers)
    return dataclasses.replace(im, layers=layers)


def threshold_for(selector, tokens: torch.Tensor, keep: float, lengths=None) -> int:
    """The integer threshold that keeps a share `keep` of the candidates of `tokens` [B, N, D] (of
    each sample's first `lengths[b]` tokens when an earlier selector shortened them)."""
    if keep >= 1.0:
        return 0
    if lengths is None:
        cand = selector.scores(tokens)[:, 1:].reshape(-1)
    else:
        lengths = torch.as_tensor(lengths)
        cand = torch.cat([selector.scores(tokens[lengths == m][:, :m])[:, 1:].reshape(-1)
                          for m in sorted(set(lengths.tolist()))])
    cand = cand.sort(descending=True).values
    k = min(max(round(keep * cand.numel()), 1), cand.numel())
    t = int(cand[k - 1])  # keeps at least k (more on ties); t + 1 keeps fewer than k: take the nearer
    kept = [int((cand >= v).sum()) for v in (t, t + 1)]
    best = t if abs(kept[0] - keep * cand.numel()) <= abs(kept[1] - keep * cand.numel()) else t + 1
    return min(best, MAX_THRESHOLD)


def thresholds_for(im: IntModel, sels: dict, x_train, keep: float) -> dict[str, int]:
    """Each selector's threshold that keeps a share `keep` of the candidates it is offered over the
    training split, in layer order: a later selector is offered what the earlier ones (at their new
    thresholds) left (progressive pruning), so the golden model runs again after each."""
    th: dict[str, int] = {}
    for name, sel in sels.items():
        _, trace = golden(with_thresholds(im, th), x_train, trace=True)
        env = dict(trace)
        env.update({i.name: x_train for i in im.inputs})
        src = im.layer(name).inputs[0]
        th[name] = threshold_for(sel, env[src], keep, kept_counts(with_thresholds(im, th), env).get(src))
    return th


def measure(im: IntModel, model: ir.Model, x_int: torch.Tensor, y: torch.Tensor) -> dict:
    """Golden accuracy, keep ratio per selector and mean MACs per layer on samples x_int."""
    out, trace = golden(im, x_int, trace=True)
    out = out if not isinstance(out, dict) else out[im.outputs[0]]
    acc = float((argmax_lowest(out) == y).double().mean())
    env = dict(trace)
    env.update({i.name: x_int for i in im.inputs})
    counts, chosen = kept_counts(im, env), selections(im, env)
    macs = {}
    for lay in model.layers:
        ins = tuple(tuple(model.shape_of(n)) for n in lay.inputs)
        if lay.name not in counts:  # all of its tokens (or not a token stream)
            macs[lay.name] = float(lay.op.macs(ins, tuple(lay.shape), lay.annotations))
            continue
        d = ins[0][1]
        plain = dataclasses.replace(lay.annotations, tokens=None)
        per = [lay.op.macs(((int(m),  d),), (int(m), d), plain) for m in counts[lay.name]]
        macs[lay.name] = sum(per) / len(per)
    keep = keep_ratios(chosen)
    return {"acc": acc, "macs": macs, "keep": keep}


def keep_ratios(chosen: dict[str, list]) -> dict[str, float]:
    """Each selector's measured keep ratio from its selections per sample (`selections(im, trace)`): the
    mean over samples of kept candidates / the candidates it was offered (a later selector is offered
    only the tokens the earlier ones left, not the padding rows after them)."""
    return {name: sum((s.count - 1) / (len(s.keep) - 1) for s in sel) / len(sel) for name, sel in chosen.items()}


@register_evaluation("tokens", options={"keeps": "keep ratios of the @tokens selectors to evaluate, "
                                                 "e.g. 1.0,0.7,0.5 (the default)"})
def token_selection(ctx: EvalContext) -> list[Section]:
    if ctx.intmodel is None:
        raise CdslError(f"{ctx.run_dir} has no integer model: nothing to evaluate", name="cdsl eval")
    keeps = parse_keeps(ctx.options.get("keeps"))
    model = ctx.spec.model
    im = ctx.intmodel
    sels = selectors_of(im)
    data = ctx.dataset
    x_test = quantize_input(im, data.x_test)
    x_train = quantize_input(im, data.x_train)
    blocks = [lay.name for lay in model.layers]
    base = baseline(ctx, "tokens")

    def row(label, threshold_text, res, ref_total):
        total = sum(res["macs"].values())
        kept = ", ".join(f"{res['keep'][n]:.3f}" for n in sels) if res["keep"] else "1 (no selector)"
        return (label, threshold_text, kept, f"{100 * res['acc']:.2f}%",
                *(f"{res['macs'][n]:,.0f}" for n in blocks), f"{total:,.0f}", f"{total / ref_total:.3f}")

    ref = measure(base.intmodel, base.spec.model, x_test, data.y_test)
    ref_total = sum(ref["macs"].values())
    rows = [row("no selector", "-", ref, ref_total)]
    for keep in keeps:
        th = thresholds_for(im, sels, x_train, keep)
        res = measure(with_thresholds(im, th), model, x_test, data.y_test)
        rows.append(row(f"keep {keep:g}", ", ".join(str(t) for t in th.values()), res, ref_total))
    trained = measure(im, model, x_test, data.y_test)
    rows.append(row("as trained", ", ".join(str(s.threshold) for s in sels.values()), trained, ref_total))
    return [Section(
        title=f"token selection ({', '.join(sels)}): integer golden accuracy and MACs per block, "
              f"{len(data.y_test)} test samples",
        columns=("selector", "thr", "kept", "acc", *blocks, "total", "ratio"),
        rows=tuple(rows),
        notes=("thr: selector threshold (0..257, score 256 = 1.0); kept: measured keep ratio; ratio: MACs total / "
               "no selector's",
               "keep r: each selector's threshold set to keep a share r of the candidates over the training split "
               "(the trained selector, not retrained); keep ratio: kept candidates / candidates, measured on the "
               "test split; MACs: per sample from the actual token count (class, kept and package tokens), averaged; "
               "the selectors' own scoring MLPs are not counted",
               f"no selector: {base.how}"))]

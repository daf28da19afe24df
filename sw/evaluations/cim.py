"""`cdsl eval` on a run with `@cim` layers: accuracy under conductance variation, and without ADCs.

- Variation: the trained network's fake-quant forward (equal to the integer model when noise-free)
  with every cell of every CIM layer multiplied by (1 + sigma * N(0, 1)), one fixed draw per
  evaluation (a programmed chip; draw d seeds layer k with 1000 (d + 1) + k, so every run and every
  network sees the same draws), `--cim-draws` draws (default 5), at each layer's
  trained `noise` and twice it; `--cim-noise SIGMA` evaluates every CIM layer at SIGMA and 2 SIGMA
  instead (e.g. a network trained without noise at the level another was trained at). Mean, standard
  deviation (over draws), min and max of the test accuracy.
- ADC-free: the integer golden model with every CIM core replaced by exact products (the same
  integer weights, biases and requantization), against the golden model with its ADCs.
"""

from __future__ import annotations

import math
import statistics

from cdsl.contract.golden import predict, quantize_input
from cdsl.errors import CdslError
from cdsl.sw.cores.cim import CimTwin, without_adc
from cdsl.sw.evaluations import EvalContext, Section, register_evaluation
from cdsl.sw.train import accuracy

DRAWS = 5


def _number(ctx: EvalContext, name: str, kind, default, lo):
    text = ctx.options.get(name)
    if text is None:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < lo:
        raise CdslError(f"--{name.replace('_', '-')} must be a number >= {lo}, got {text!r}")
    return value


def _pct(v: float) -> str:
    return f"{100 * v:.2f}%"


def noise_accuracies(net, x, y, sigmas: dict[str, float], *, draws: int) -> list[float]:
    """Test accuracy of `net` under `draws` fixed draws of cell variation (`sigmas`: layer -> sigma)."""
    twins = {name: m for name, block in net.blocks.items() for m in block.modules() if isinstance(m, CimTwin)}
    out = []
    try:
        for d in range(draws):
            for k, (name, twin) in enumerate(sorted(twins.items())):
                twin.noise_draw(sigmas[name], seed=1000 * (d + 1) + k)
            out.append(accuracy(net, x, y))
    finally:
        for twin in twins.values():
            twin.noise_draw(None)
    return out


@register_evaluation("cim", options={
    "cim_noise": "evaluate CIM layers at this conductance variation (and 2x) instead of their trained noise",
    "cim_draws": f"noise draws per level (default {DRAWS})"})
def cim_evaluation(ctx: EvalContext) -> list[Section]:
    draws = _number(ctx, "cim_draws", int, DRAWS, 1)
    override = _number(ctx, "cim_noise", float, None, 0.0)
    layers = [lay for lay in ctx.spec.model.layers if lay.annotations.cim is not None]
    trained = {lay.name: lay.annotations.cim.noise for lay in layers}
    base = {name: (override if override is not None else sigma) for name, sigma in trained.items()}
    x, y = ctx.dataset.x_test, ctx.dataset.y_test
    clean = accuracy(ctx.net, x, y)
    rows = [("none", "0", 1, _pct(clean), "-", _pct(clean), _pct(clean))]
    notes = [f"trained noise: {', '.join(f'{n} {s:g}' for n, s in trained.items())}; one draw = every cell of "
             "every CIM layer times (1 + sigma * N(0, 1)), fixed for the whole test split"]
    if any(base.values()):
        for factor in (1, 2):
            sigmas = {name: factor * s for name, s in base.items()}
            accs = noise_accuracies(ctx.net, x, y, sigmas, draws=draws)
            label = ("--cim-noise" if override is not None else "trained") + ("" if factor == 1 else " x2")
            spread = f"{100 * statistics.stdev(accs):.2f} pts" if draws > 1 else "-"
            rows.append((label, ", ".join(f"{s:g}" for s in sigmas.values()), draws, _pct(statistics.mean(accs)),
                         spread, _pct(min(accs)), _pct(max(accs))))
    else:
        notes.append("trained without noise: pass --cim-noise SIGMA to evaluate under variation")
    sections = [Section("CIM accuracy under conductance variation (fake-quant forward, test split)",
                        ("variation", "sigma", "draws", "mean", "std (over draws)", "min", "max"), tuple(rows), tuple(notes))]
    if ctx.intmodel is not None:
        x_int = quantize_input(ctx.intmodel, x)
        with_adc = float((predict(ctx.intmodel, x_int) == y).double().mean())
        digital = float((predict(without_adc(ctx.intmodel), x_int) == y).double().mean())
        sections.append(Section(
            "CIM layers with and without ADCs (integer golden model, test split)", ("model", "accuracy"),
            (("CIM tiles with ADCs", _pct(with_adc)), ("same integers, exact digital products (no ADC)", _pct(digital)),
             ("difference", f"{100 * (with_adc - digital):+.2f} pts")),
            ("the ADC-free model keeps every integer weight, bias and requantization; only the partial-sum "
             "quantization is gone",)))
    return sections


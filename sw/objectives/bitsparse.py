"""MSQ's training of the `@bitsparse` layers, taken together: the LSB regularizer and the Hessian-guided
bit drops (`cdsl.sw.quantizers.bitsparse.BitSparseQuant` holds each layer's width).

Per batch, while the budget is not met: loss = the objective so far + sum over the layers of
`strength * lsb_penalty(weights)` (an l1 term on the computed least significant bits).

At the first batch of every epoch in which bitsparse (and quant) are active, a check:
1. The budget is the parameter-weighted mean of the layers' `target`s; the network's average width
   is the parameter-weighted mean of their current widths. Once the average is at or below the
   budget (or no layer can drop further), regularization stops for good and the remaining epochs
   fine-tune the network at its widths.
2. Sensitivity of each layer: the mean diagonal of the Hessian of the classification loss with
   respect to its weights, tr(H) / n, estimated on this batch with Hutchinson's estimator
   (E[v^T H v] over HUTCHINSON_SAMPLES Rademacher probes v, Hv by double backpropagation; a fixed
   seed per epoch, so training stays deterministic).
3. Each layer whose LSB sparsity (share of even codes among its kept weights) reached ALPHA drops
   bits, least sensitive first: 2 at once when its sensitivity is below the layers' mean, else 1
   (MSQ's aggressive pruning of insensitive layers); never below MIN_BITS, never more than the
   budget still needs, and the checks stop once it is met.
"""

from __future__ import annotations

import math

import torch

from cdsl.sw.layers import WeightedParams
from cdsl.sw.objectives import register_objective
from cdsl.sw.quantizers.bitsparse import MIN_BITS, BitSparseQuant
from cdsl.sw.train import classification_loss

ALPHA = 0.85  # LSB sparsity at which a layer's lowest bit is dropped
HUTCHINSON_SAMPLES = 16


def sparsified_layers(net) -> list[tuple[WeightedParams, BitSparseQuant]]:
    """(module, its BitSparseQuant) of every `@bitsparse` layer, in module order."""
    return [(m, m.wq) for m in net.modules() if isinstance(m, WeightedParams) and isinstance(m.wq, BitSparseQuant)]


def average_bits(layers) -> float:
    """The parameter-weighted mean width of `layers` [(module, quantizer)]."""
    sizes = [m.weight.numel() for m, _ in layers]
    return sum(q.bits * n for (_, q), n in zip(layers, sizes)) / sum(sizes)


def budget(layers) -> float:
    """The parameter-weighted mean of the layers' targets."""
    sizes = [m.weight.numel() for m, _ in layers]
    return sum(q.target * n for (_, q), n in zip(layers, sizes)) / sum(sizes)


def hessian_traces(net, layers, x: torch.Tensor, y: torch.Tensor, *, samples: int, seed: int) -> list[float]:
    """tr(H) / (kept weights) per layer, of the classification loss on (x, y), by Hutchinson's estimator."""
    weights = [m.weight for m, _ in layers]
    gen = torch.Generator().manual_seed(seed)
    traces = [0.0] * len(weights)
    was = net.training
    net.eval()  # no moving-average updates from the probe passes
    try:
        with torch.enable_grad():
            grads = torch.autograd.grad(classification_loss(net(x), y), weights, create_graph=True)
            for _ in range(samples):
                probes = [torch.randint(0, 2, w.shape, generator=gen).to(w.dtype) * 2 - 1 for w in weights]
                hvs = torch.autograd.grad(grads, weights, grad_outputs=probes, retain_graph=True, allow_unused=True)
                for i, (v, hv) in enumerate(zip(probes, hvs)):
                    traces[i] += 0.0 if hv is None else float((v * hv).sum()) / samples
    finally:
        net.train(was)
    return [t / max(1, int(m.mask.sum())) for t, (m, _) in zip(traces, layers)]


def stop_regularizing(layers) -> None:
    for _, q in layers:
        q.regularizing = False


@torch.no_grad()
def check(net, layers, x: torch.Tensor, y: torch.Tensor) -> None:
    """The epoch's check (module docstring, steps 1-3)."""
    for _, q in layers:
        q.check_due = False
    goal, total = budget(layers), sum(m.weight.numel() for m, _ in layers)
    if average_bits(layers) <= goal or all(q.bits <= MIN_BITS for _, q in layers):
        stop_regularizing(layers)
        return
    sensitivity = hessian_traces(net, layers, x, y, samples=HUTCHINSON_SAMPLES, seed=layers[0][1].epoch)
    mean = sum(sensitivity) / len(sensitivity)
    for (_, q), value in zip(layers, sensitivity):
        q.sensitivity = value
    for i in sorted(range(len(layers)), key=sensitivity.__getitem__):
        m, q = layers[i]
        sparsity = q.lsb_sparsity(m.masked_weight(), m.mask)
        if sparsity < ALPHA or q.bits <= MIN_BITS:
            continue
        needed = math.ceil((average_bits(layers) - goal) * total / m.weight.numel())
        q.drop(min(2 if sensitivity[i] < mean else 1, q.bits - MIN_BITS, needed),
               sensitivity=sensitivity[i], lsb_sparsity=sparsity)
        if average_bits(layers) <= goal:
            stop_regularizing(layers)
            return


@register_objective("bitsparse")
def bit_sparsification(net, x, y, inner):
    layers = [(m, q) for m, q in sparsified_layers(net) if q.on]
    if any(q.check_due for _, q in layers):
        check(net, layers, x, y)
    loss, out = inner(x, y)
    terms = [q.strength * q.lsb_penalty(m.masked_weight()) for m, q in layers if q.regularizing]
    return (loss + sum(terms) if terms else loss), out

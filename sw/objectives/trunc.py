"""The truncation-ready objective of `@trunc` layers (Any-Precision-style, as TruncQuant builds on it).

Every batch runs the network once per precision of the `@trunc` sets, highest first, and sums the
losses before one optimizer step (precisions are not sampled):
- the full-precision pass (every layer at its stored width) gives the classification loss and the
  regularizers (the objective so far);
- each lower precision p runs every `@trunc` layer at the lowest precision of its own set at or above
  p (`TruncQuant.trained_precision`; the other layers stay as they are) and adds
  `LABEL_WEIGHT * CE(labels) + (1 - LABEL_WEIGHT) * CE(teacher)`, the teacher being the full pass's
  detached softmax (Any-Precision's distillation from the top model). Any-Precision uses the soft
  term alone; half and half measured better on the digits MLP (6 seeds, set [8, 6, 4, 2]: +0.5
  points at every precision from 8 down to 2), so that is our choice.
Activation scales are shared by all precisions (the hardware has one requantization per layer), so
every pass updates the same moving averages (freezing them in the lower passes measured no better).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cdsl.sw.objectives import register_objective
from cdsl.sw.quantizers.trunc import trunc_quantizers
from cdsl.sw.train import classification_loss

LABEL_WEIGHT = 0.5  # share of the label loss in a lower-precision pass (the rest: distillation)


def soft_cross_entropy(out, teacher) -> torch.Tensor:
    """Cross entropy of `out` against the probabilities `teacher` (averaged over several outputs)."""
    outs, targets = (list(out.values()), list(teacher.values())) if isinstance(out, dict) else ([out], [teacher])
    return sum(-(t * F.log_softmax(o, dim=-1)).sum(dim=-1).mean() for o, t in zip(outs, targets)) / len(outs)


@register_objective("trunc")
def truncation_ready(net, x, y, inner):
    quantizers = trunc_quantizers(net)
    loss, out = inner(x, y)
    if "quant" not in net.active or not quantizers:
        return loss, out
    teacher = ({k: F.softmax(v.detach(), dim=-1) for k, v in out.items()} if isinstance(out, dict)
               else F.softmax(out.detach(), dim=-1))
    passes = sorted({p for q in quantizers for p in q.precisions}, reverse=True)[1:]
    try:
        for p in passes:
            for q in quantizers:
                q.set_precision(q.trained_precision(p))
            low = net(x)
            loss = loss + LABEL_WEIGHT * classification_loss(low, y) \
                + (1 - LABEL_WEIGHT) * soft_cross_entropy(low, teacher)
    finally:
        for q in quantizers:
            q.set_precision(0)
    return loss, out

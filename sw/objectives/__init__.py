"""Training objectives: how an annotation shapes the loss of a batch, beyond its modules' forward pass.

The base objective is the classification loss of the network's outputs (averaged over several
outputs) plus every active module's `regularizer()`. An annotation whose training needs more (run
the network at several runtime precisions and distil between them, add a keep-ratio loss, ...)
registers a wrapper in its own module of this package:

    @register_objective("trunc")
    def truncation_ready(net, x, y, inner):      # inner(x, y) -> (loss, outputs): the objective so far
        ...
        return loss, outputs

Wrappers apply, in annotation order, for the annotations that some layer carries and the current
stage activates (`net.active`). Every module here is imported on first use.
"""

from __future__ import annotations

import sys
from typing import Callable

import torch

from cdsl.dsl import ir
from cdsl.plugins import import_all

Objective = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, object]]
_WRAPPERS: dict[str, Callable] = {}


def register_objective(annotation: str) -> Callable:
    def add(fn: Callable) -> Callable:
        if annotation not in ir.ANNOTATION_NAMES:
            raise ValueError(f"no annotation @{annotation}")
        if annotation in _WRAPPERS:
            raise TypeError(f"an objective is already registered for @{annotation}")
        _WRAPPERS[annotation] = fn
        return fn

    return add


def base_objective(net, x: torch.Tensor, y: torch.Tensor):
    from cdsl.sw.train import classification_loss

    out = net(x)
    return classification_loss(out, y) + net.regularizer(), out


def objective(net, x: torch.Tensor, y: torch.Tensor):
    """(loss, outputs) of a batch for `net` (a `cdsl.sw.build.Net`) in its current stage."""
    import_all(sys.modules[__name__])
    present = {n for lay in net.model.layers for n in lay.annotations.present()}

    def inner(x_, y_):
        return base_objective(net, x_, y_)

    fn = inner
    for name in ir.ANNOTATION_NAMES:
        if name in _WRAPPERS and name in present and name in net.active:
            fn = (lambda wrapper, prev: (lambda x_, y_: wrapper(net, x_, y_, prev)))(_WRAPPERS[name], fn)
    return fn(x, y)

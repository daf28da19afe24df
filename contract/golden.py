"""The integer golden model: runs an IntModel with integer arithmetic only (torch int64).

Each layer's step is its payload's `run` (defined with the kind's reference in
`cdsl.contract.ref`); nothing here knows a kind. Runtime settings (`IntModel.settings()`: a
bit-serial layer's precision, ...) are given per layer as `{layer: {setting: value}}` and checked
against what the layers declare.

Token streams that a selector shortened carry their per-sample token counts beside the tensors
(`Payload.run_tokens`): a layer reads its inputs' counts and states its output's.

Input quantization (written once, `QType.quantize`): q = clamp(round_half_up(x / scale), qmin, qmax).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from cdsl.contract.intmodel import IntInput, IntModel, Settings, with_settings


def quantize_input(intmodel: IntModel, x_float, *, name: str | None = None):
    """Float input(s) -> int64 codes of the model input type (round half up, then clamp).

    `x_float` is one tensor/array for a one-input model (or `name` selects the input), or a
    dict name -> tensor for several inputs (then a dict comes back).
    """
    if isinstance(x_float, dict):
        return {k: quantize_input(intmodel, v, name=k) for k, v in x_float.items()}
    return _input(intmodel, name).qtype.quantize(x_float)


def feeds(intmodel: IntModel, x_int) -> dict[str, torch.Tensor]:
    """The model inputs as a dict name -> int64 tensor [B, *shape], checked (shape, type, range)."""
    given = x_int if isinstance(x_int, dict) else {_input(intmodel, None).name: x_int}
    unknown = sorted(set(given) - {i.name for i in intmodel.inputs})
    if unknown:
        raise ValueError(f"model {intmodel.name!r} has no input {unknown[0]!r}")
    out = {}
    for inp in intmodel.inputs:
        if inp.name not in given:
            raise ValueError(f"golden: no value for input {inp.name!r}")
        x = _as_int64(given[inp.name], what=f"input {inp.name!r}")
        if tuple(x.shape[1:]) != tuple(inp.shape):
            raise ValueError(f"golden: input {inp.name!r} must be [B, {', '.join(map(str, inp.shape))}], "
                             f"got {tuple(x.shape)!r}")
        if x.numel() and (int(x.min()) < inp.qtype.qmin or int(x.max()) > inp.qtype.qmax):
            raise ValueError(f"golden: input {inp.name!r} holds values outside [{inp.qtype.qmin}, {inp.qtype.qmax}]")
        out[inp.name] = x
    return out


def golden(intmodel: IntModel, x_int, *, settings: Settings | None = None, trace: bool = False):
    """Integer inference.

    x_int: int64 [B, *input shape] for a one-input model, or a dict input name -> tensor.
    settings: runtime settings per layer (defaults: every layer's declared defaults).
    Returns the output int64 tensor [B, ...] (a dict name -> tensor when the model has several
    outputs); with trace=True, (outputs, {layer name: int64 tensor}) for every layer.
    """
    result, tr, _ = golden_counts(intmodel, x_int, settings=settings)
    return (result, tr) if trace else result


def golden_counts(intmodel: IntModel, x_int, *, settings: Settings | None = None):
    """`golden(..., trace=True)` and the token counts: (outputs, trace, {layer: int64 [B]}) where the
    counts name every layer output whose token count a selector shortened (`Payload.run_tokens`)."""
    checked = intmodel.check_settings(settings)
    env: dict[str, torch.Tensor] = dict(feeds(intmodel, x_int))
    counts: dict[str, torch.Tensor] = {}  # token counts of the streams a selector shortened
    for lay in intmodel.layers:
        ins, cin = [env[n] for n in lay.inputs], [counts.get(n) for n in lay.inputs]
        env[lay.name], cout = lay.payload.run_tokens(lay, ins, cin, with_settings(lay, checked))
        if cout is not None:
            counts[lay.name] = cout
    outs = {n: env[n] for n in intmodel.outputs}
    result = outs[intmodel.outputs[0]] if len(outs) == 1 else outs
    return result, {lay.name: env[lay.name] for lay in intmodel.layers}, counts


def predict(intmodel: IntModel, x_int, *, settings: Settings | None = None) -> torch.Tensor:
    """Class indices [B] of the first output: argmax, the lowest index on ties."""
    out = golden(intmodel, x_int, settings=settings)
    if isinstance(out, dict):
        out = out[intmodel.outputs[0]]
    return argmax_lowest(out)


def argmax_lowest(scores: torch.Tensor) -> torch.Tensor:
    """Index of the maximum along the last dim; the lowest index among equal maxima."""
    scores = torch.as_tensor(scores)
    scores = scores.reshape(scores.shape[0], -1)
    best = scores.max(dim=-1, keepdim=True).values
    idx = torch.arange(scores.shape[-1]).expand_as(scores)
    big = torch.full_like(idx, scores.shape[-1])
    return torch.where(scores == best, idx, big).min(dim=-1).values


def precision_settings(intmodel: IntModel, precisions: Mapping[str, int] | None) -> dict[str, dict[str, int]]:
    """`{layer: bits}` (the `--precision LAYER=BITS` option) as settings `{layer: {"precision": bits}}`,
    checked against the layers' declared settings."""
    return intmodel.check_settings({name: {"precision": bits} for name, bits in (precisions or {}).items()})


def _input(intmodel: IntModel, name: str | None) -> IntInput:
    if name is None:
        if len(intmodel.inputs) != 1:
            names = ", ".join(i.name for i in intmodel.inputs)
            raise ValueError(f"model {intmodel.name!r} has several inputs ({names}): pass a dict")
        return intmodel.inputs[0]
    for inp in intmodel.inputs:
        if inp.name == name:
            return inp
    raise ValueError(f"model {intmodel.name!r} has no input {name!r}")


def _as_int64(x, *, what: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor) or x.is_floating_point():
        raise TypeError(f"golden: {what} must be an integer tensor (use quantize_input)")
    return x.to(torch.int64)

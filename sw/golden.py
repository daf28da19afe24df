"""The integer golden model: runs an IntModel with integer arithmetic only (torch int64).

It composes the block references of `cdsl.contract.ref` (dense, conv2d, pool, activation,
requant); nothing here defines arithmetic of its own except the flatten reshape
((C, H, W) row-major) and the input quantization below.

Input quantization (written once, here): q = clamp(round_half_up(x / scale), qmin, qmax), with
`cdsl.sw.layers.round_half_up`, the same rounding as the requantization contract.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import numpy as np
import torch

from cdsl.dsl import ir
from cdsl.contract.ref.activation import relu, sign
from cdsl.contract.ref.bitserial_mac import truncate
from cdsl.contract.ref.conv2d import conv2d
from cdsl.contract.ref.dense import dense
from cdsl.contract.ref.pool import avgpool, maxpool
from cdsl.contract.ref.requant import requantize
from cdsl.sw.layers import round_half_up
from cdsl.contract.intmodel import IntInput, IntLayer, IntModel

_I64_LIMIT = 1 << 63


def quantize_input(intmodel: IntModel, x_float, *, name: str | None = None) -> torch.Tensor:
    """Float input(s) -> int64 codes of the model input type (round half up, then clamp).

    `x_float` is one tensor/array for a one-input model (or `name` selects the input), or a
    dict name -> tensor for several inputs (then a dict comes back).
    """
    if isinstance(x_float, dict):
        return {k: quantize_input(intmodel, v, name=k) for k, v in x_float.items()}
    inp = _input(intmodel, name)
    x = torch.as_tensor(np.asarray(x_float) if not isinstance(x_float, torch.Tensor) else x_float)
    x = x.to(torch.float64)
    q = round_half_up(x / inp.qtype.scale)
    return q.clamp(inp.qtype.qmin, inp.qtype.qmax).to(torch.int64)


def golden(intmodel: IntModel, x_int, *, trace: bool = False):
    """Integer inference.

    x_int: int64 [B, *input shape] for a one-input model, or a dict input name -> tensor.
    Returns the output int64 tensor [B, ...] (a dict name -> tensor when the model has several
    outputs); with trace=True, (outputs, {layer name: int64 tensor}) for every layer.
    """
    env: dict[str, torch.Tensor] = {}
    feeds = x_int if isinstance(x_int, dict) else {_input(intmodel, None).name: x_int}
    for inp in intmodel.inputs:
        if inp.name not in feeds:
            raise ValueError(f"golden: no value for input {inp.name!r}")
        x = _as_int64(feeds[inp.name], what=f"input {inp.name!r}")
        if tuple(x.shape[1:]) != tuple(inp.shape):
            raise ValueError(f"golden: input {inp.name!r} must be [B, {', '.join(map(str, inp.shape))}], got {tuple(x.shape)!r}")
        if x.numel() and (int(x.min()) < inp.qtype.qmin or int(x.max()) > inp.qtype.qmax):
            raise ValueError(f"golden: input {inp.name!r} holds values outside [{inp.qtype.qmin}, {inp.qtype.qmax}]")
        env[inp.name] = x
    layer_out: dict[str, torch.Tensor] = {}
    for lay in intmodel.layers:
        args = [env[n] for n in lay.inputs]
        out = run_layer(lay, *args)
        env[lay.name] = out
        layer_out[lay.name] = out
    outs = {n: env[n] for n in intmodel.outputs}
    result = outs[intmodel.outputs[0]] if len(outs) == 1 else outs
    return (result, layer_out) if trace else result


def at_precisions(intmodel: IntModel, precisions: Mapping[str, int] | None) -> IntModel:
    """The model as hardware runs it with runtime weight precisions (TruncQuant, bit-serial MACs).

    `precisions` maps layer name -> p planes; that layer's weights become its top p of w_bits
    bits (`cdsl.contract.ref.bitserial_mac.truncate`); requantization is unchanged. p = 0 or
    p >= w_bits, or a layer not named, keeps full precision.
    """
    if not precisions:
        return intmodel
    names = {lay.name for lay in intmodel.layers}
    unknown = sorted(set(precisions) - names)
    if unknown:
        raise ValueError(f"no layer named {unknown[0]!r} in {intmodel.name!r}")
    layers = []
    for lay in intmodel.layers:
        p = precisions.get(lay.name, 0)
        if p and lay.weight is not None and p < lay.w_bits:
            lay = dataclasses.replace(lay, weight=np.asarray(truncate(lay.weight, lay.w_bits, p), dtype=np.int64))
        layers.append(lay)
    return dataclasses.replace(intmodel, layers=tuple(layers))


def predict(intmodel: IntModel, x_int) -> torch.Tensor:
    """Class indices [B]: argmax of the (single) output, the lowest index on ties."""
    out = golden(intmodel, x_int)
    if isinstance(out, dict):
        raise ValueError(f"predict needs a model with one output, {intmodel.name!r} has {len(out)}")
    return argmax_lowest(out)


def argmax_lowest(scores: torch.Tensor) -> torch.Tensor:
    """Index of the maximum along the last dim; the lowest index among equal maxima."""
    scores = scores.reshape(scores.shape[0], -1)
    best = scores.max(dim=-1, keepdim=True).values
    idx = torch.arange(scores.shape[-1]).expand_as(scores)
    big = torch.full_like(idx, scores.shape[-1])
    return torch.where(scores == best, idx, big).min(dim=-1).values


def run_layer(lay: IntLayer, x: torch.Tensor) -> torch.Tensor:
    """One layer of the golden model on an int64 batch."""
    op = lay.op
    if isinstance(op, (ir.Dense, ir.Conv2d)):
        return _weighted(lay, x)
    if isinstance(op, ir.ReLU):
        return relu(x)
    if isinstance(op, ir.Sign):
        return sign(x)
    if isinstance(op, ir.Flatten):
        return x.reshape(x.shape[0], -1)
    if isinstance(op, ir.Pool):
        if op.kind is ir.PoolKind.MAX:
            return maxpool(x, kernel=op.kernel, stride=op.stride)
        rq = lay.requant
        if rq is None or rq.multiplier.size != 1:
            raise ValueError(f"golden: avgpool {lay.name!r} needs a one-element requant (1/kernel**2)")
        return avgpool(
            x, kernel=op.kernel, stride=op.stride, multiplier=int(rq.multiplier[0]), shift=int(rq.shift[0]),
            qmin=rq.qmin, qmax=rq.qmax,
        )
    raise ValueError(f"golden: layer {lay.name!r}: integer {type(op).__name__} is not supported")


def _weighted(lay: IntLayer, x: torch.Tensor) -> torch.Tensor:
    if lay.weight is None or lay.requant is None:
        raise ValueError(f"golden: weighted layer {lay.name!r} has no integer weight/requant")
    w = torch.from_numpy(np.asarray(lay.weight, dtype=np.int64))
    b = None if lay.bias is None else torch.from_numpy(np.asarray(lay.bias, dtype=np.int64))
    if isinstance(lay.op, ir.Dense):
        acc = dense(x, w, b)
        chan_shape = (-1,)
    else:
        acc = conv2d(x, w, b, stride=lay.op.stride, padding=lay.op.padding)
        chan_shape = (-1, 1, 1)
    mult = torch.from_numpy(np.asarray(lay.requant.multiplier, dtype=np.int64)).reshape(chan_shape)
    shift = torch.from_numpy(np.asarray(lay.requant.shift, dtype=np.int64)).reshape(chan_shape)
    _check_no_overflow(lay, acc, mult)
    return requantize(acc, mult, shift, lay.requant.qmin, lay.requant.qmax)


def _check_no_overflow(lay: IntLayer, acc: torch.Tensor, mult: torch.Tensor) -> None:
    if acc.numel() == 0:
        return
    worst = int(acc.abs().max()) * int(mult.max())
    if worst >= _I64_LIMIT // 2:
        raise ValueError(
            f"golden: layer {lay.name!r}: acc * multiplier reaches 2**{math.log2(worst):.1f}, beyond int64"
        )


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

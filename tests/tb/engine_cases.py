"""Engine test configurations (planned from one-layer IntModels) and their references, shared by the
amaranth.sim and Verilator tests. Expected outputs apply cdsl.contract.ref to the node's configuration
(weights, bias, requantization): no hardware helper computes them."""

from __future__ import annotations

import numpy as np
import torch

from tb import random_models as M

from cdsl.contract.intmodel import IntInput, IntModel, QType
from cdsl.contract.ref import bitserial_mac as bs_ref
from cdsl.contract.ref.conv2d import conv2d
from cdsl.contract.ref.pool import avgpool, maxpool
from cdsl.contract.ref.requant import requantize
from cdsl.dsl import ir
from cdsl.hw.plan import plan_network

IN8 = QType(8, False, 1 / 16)
OUT8 = QType(8, True, 0.1)


def one_layer_plan(layer, in_type, *, lanes=None):
    """The plan of a model made of `layer` alone (its node is `plan.nodes[0]`)."""
    model = IntModel("one", (IntInput(layer.inputs[0], layer.in_shapes[0], in_type),), (layer,), (layer.name,))
    return plan_network(model, lanes={layer.name: lanes} if lanes else None)


def weighted_node(rng, *, in_shape, co, kernel=1, stride=1, padding=0, lanes=1, bitserial=False, w_bits=8,
                  per_channel=False, weight=None, bias=True, dense=False, reals=None):
    """A MacEngineNode of a random dense (`dense=True`, in_shape (K, 1, 1)) or conv layer."""
    ci = in_shape[0]
    lo, hi = ir.int_range(w_bits, True)
    if weight is None:
        weight = rng.integers(lo, hi + 1, size=(co, ci, kernel, kernel))
    k = ci * kernel * kernel
    if reals is None:
        reals = rng.uniform(0.3, 3, size=co if per_channel else 1) * 127 / (np.sqrt(k) * 255 * (hi + 1) / 2)
    rq = M.requant(reals, OUT8)
    b = rng.integers(-5000, 5000, size=co) if bias else None
    core = M.core(lanes, bitserial=bitserial)
    if dense:
        layer = M.dense("e", "x", np.asarray(weight).reshape(co, ci), in_type=IN8, out_type=OUT8, rq=rq,
                        w_bits=w_bits, bias=b, core_=core)
    else:
        layer = M.conv2d("e", "x", weight, in_shape=in_shape, in_type=IN8, out_type=OUT8, rq=rq, stride=stride,
                         padding=padding, w_bits=w_bits, bias=b, core_=core)
    return one_layer_plan(layer, IN8, lanes=lanes).nodes[0]


def reference(node, x, precision=0):
    """The node's outputs for input x: conv2d (a dense is 1x1), bias, requantize (from cdsl.contract.ref)."""
    w = node.weight
    if precision:
        w = bs_ref.truncate(w, node.w_bits, precision)
    acc = conv2d(torch.tensor(x), torch.tensor(w), None if node.bias is None else torch.tensor(node.bias),
                 stride=node.stride, padding=node.padding)
    mult = torch.tensor(node.multipliers).reshape(-1, 1, 1)
    shift = torch.tensor(node.shifts).reshape(-1, 1, 1)
    return requantize(acc, mult, shift, node.qmin, node.qmax).reshape(-1).tolist()


def pool_node(*, average: bool, in_shape, kernel: int, stride: int):
    """A max or average pooling node on unsigned 8-bit activations."""
    u8 = QType(8, False, 1 / 16)
    build = M.avgpool if average else M.maxpool
    return one_layer_plan(build("p", "x", in_shape, u8, kernel=kernel, stride=stride), u8).nodes[0]


def pool_reference(node, x) -> list[int]:
    xt = torch.tensor(x)
    if node.requant is None:
        want = maxpool(xt, kernel=node.kernel, stride=node.stride)
    else:
        mult, shift, qmin, qmax = node.requant
        want = avgpool(xt, kernel=node.kernel, stride=node.stride, multiplier=mult, shift=shift, qmin=qmin, qmax=qmax)
    return want.reshape(-1).tolist()


def corner_images(rng, shape, *, count: int = 2):
    """Unsigned 8-bit activations: all max, zeros, alternating max/0, then random."""
    n = int(np.prod(shape))
    xs = [np.full(n, 255), np.zeros(n, dtype=np.int64), np.where(np.arange(n) % 2 == 0, 255, 0)]
    xs += [rng.integers(0, 256, size=n) for _ in range(count)]
    return np.stack(xs).reshape(len(xs), *shape)

"""LayerEngine test configurations and their references, shared by the amaranth.sim and Verilator tests."""

from __future__ import annotations

import numpy as np
import torch

from cdsl.dsl import ir
from cdsl.hw.plan import EngineConfig, EngineKind
from cdsl.contract.ref import bitserial_mac as bs_ref
from cdsl.contract.ref.conv2d import conv2d
from cdsl.contract.ref.pool import avg_multiplier, avgpool, maxpool
from cdsl.contract.ref.requant import quantize_multiplier, requantize


def weighted_config(rng, *, kind, in_shape, co, kernel=1, stride=1, padding=0, lanes=1, bitserial=False, w_bits=8,
                    per_channel=False, weight=None, bias=True):
    ci, h, w = in_shape
    ho = (h + 2 * padding - kernel) // stride + 1
    wo = (w + 2 * padding - kernel) // stride + 1
    lo, hi = ir.int_range(w_bits, True)
    if weight is None:
        weight = rng.integers(lo, hi + 1, size=(co, ci, kernel, kernel))
    k = ci * kernel * kernel
    reals = rng.uniform(0.3, 3, size=co if per_channel else 1) * 127 / (np.sqrt(k) * 255 * (hi + 1) / 2)
    pairs = [quantize_multiplier(float(r)) for r in reals]
    return EngineConfig(
        name="e", kind=kind, in_shape=in_shape, out_shape=(co, ho, wo), in_bits=8, in_signed=False, out_bits=8,
        out_signed=True, kernel=kernel, stride=stride, padding=padding, lanes=lanes, bitserial=bitserial,
        w_bits=w_bits, weight=np.asarray(weight, dtype=np.int64),
        bias=rng.integers(-5000, 5000, size=co) if bias else None,
        multipliers=tuple(p[0] for p in pairs), shifts=tuple(p[1] for p in pairs), qmin=-128, qmax=127)


def reference(cfg, x, precision=0):
    w = cfg.weight
    if cfg.bitserial and precision:
        w = bs_ref.truncate(w, cfg.w_bits, precision)
    acc = conv2d(torch.tensor(x), torch.tensor(w), None if cfg.bias is None else torch.tensor(cfg.bias),
                 stride=cfg.stride, padding=cfg.padding)
    mult = torch.tensor(cfg.multipliers).reshape(-1, 1, 1)
    shift = torch.tensor(cfg.shifts).reshape(-1, 1, 1)
    return requantize(acc, mult, shift, cfg.qmin, cfg.qmax).reshape(-1).tolist()


def pool_config(*, kind: EngineKind, in_shape, kernel: int, stride: int) -> EngineConfig:
    """A max or average pooling engine on unsigned 8-bit activations."""
    c, h, w = in_shape
    out = (c, (h - kernel) // stride + 1, (w - kernel) // stride + 1)
    extra = {}
    if kind is EngineKind.AVGPOOL:
        mult, shift = avg_multiplier(kernel)
        extra = dict(multipliers=(mult,), shifts=(shift,), qmin=0, qmax=255)
    return EngineConfig(name="p", kind=kind, in_shape=in_shape, out_shape=out, in_bits=8, in_signed=False,
                        out_bits=8, out_signed=False, kernel=kernel, stride=stride, **extra)


def pool_reference(cfg: EngineConfig, x) -> list[int]:
    xt = torch.tensor(x)
    if cfg.kind is EngineKind.MAXPOOL:
        want = maxpool(xt, kernel=cfg.kernel, stride=cfg.stride)
    else:
        want = avgpool(xt, kernel=cfg.kernel, stride=cfg.stride, multiplier=cfg.multipliers[0],
                       shift=cfg.shifts[0], qmin=cfg.qmin, qmax=cfg.qmax)
    return want.reshape(-1).tolist()


def corner_images(rng, shape, *, count: int = 2):
    """Unsigned 8-bit activations: all max, zeros, alternating max/0, then random."""
    n = int(np.prod(shape))
    xs = [np.full(n, 255), np.zeros(n, dtype=np.int64), np.where(np.arange(n) % 2 == 0, 255, 0)]
    xs += [rng.integers(0, 256, size=n) for _ in range(count)]
    return np.stack(xs).reshape(len(xs), *shape)

"""Synthetic IntModels with random integer weights, for hardware tests and benchmarks.

Requantization scales are chosen so that typical accumulators land inside the output range
(some saturate, which the tests want too). Nothing here is trained.
"""

from __future__ import annotations

import math

import numpy as np

from cdsl.dsl import ir
from cdsl.contract.ref.pool import avg_multiplier
from cdsl.contract.ref.requant import quantize_multiplier
from cdsl.contract.intmodel import IntInput, IntLayer, IntModel, QType, Requant


def _requant(rng, channels: int, k: int, x_max: int, w_bits: int, out: QType, per_channel: bool) -> Requant:
    spread = math.sqrt(k) * x_max * (1 << (w_bits - 1)) / 2
    reals = rng.uniform(0.5, 2.0, size=channels if per_channel else 1) * (out.qmax / spread)
    pairs = [quantize_multiplier(float(r)) for r in reals]
    return Requant(np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.int64),
                   out.qmin, out.qmax)


def _weights(rng, shape, w_bits: int, sparsity: float) -> np.ndarray:
    lo, hi = ir.int_range(w_bits, True)
    w = rng.integers(lo, hi + 1, size=shape, dtype=np.int64)
    if sparsity:
        w[rng.random(shape) < sparsity] = 0
    return w


def _weighted_layer(rng, name, op, inp, in_shape, out_shape, in_type, out_type, w_bits, k, x_max, *,
                    bitserial_lanes=None, per_channel=False, sparsity=0.0):
    channels = out_shape[0]
    wshape = (channels, in_shape[0]) if isinstance(op, ir.Dense) else (channels, in_shape[0], op.kernel, op.kernel)
    weight = _weights(rng, wshape, w_bits, sparsity)
    bias_span = max(1, int(math.sqrt(k) * x_max * (1 << (w_bits - 1)) // 4))
    ann = ir.Annotations(quant=ir.Quant(w=w_bits, a=out_type.bits),
                         bitserial=ir.BitSerial(lanes=bitserial_lanes) if bitserial_lanes else None)
    return IntLayer(
        name=name, op=op, inputs=(inp,), in_shapes=(tuple(in_shape),), out_shape=tuple(out_shape),
        in_types=(in_type,), out_type=out_type, annotations=ann, w_bits=w_bits, weight=weight,
        w_scale=np.ones(channels if per_channel else 1), bias=rng.integers(-bias_span, bias_span + 1, size=channels),
        mask=weight != 0, requant=_requant(rng, channels, k, x_max, w_bits, out_type, per_channel),
    )


def random_mlp(sizes, *, seed: int, w_bits=8, a_bits: int = 8, bitserial_lanes=None, sparsity: float = 0.0,
               name: str = "mlp") -> IntModel:
    """Dense layers sizes[0] -> sizes[1] -> ... with fused ReLUs (unsigned hidden outputs) and
    a signed last layer. `w_bits` and `bitserial_lanes` may be one value or one per layer."""
    rng = np.random.default_rng(seed)
    n = len(sizes) - 1
    w_list = list(w_bits) if isinstance(w_bits, (list, tuple)) else [w_bits] * n
    bs_list = list(bitserial_lanes) if isinstance(bitserial_lanes, (list, tuple)) else [bitserial_lanes] * n
    in_type = QType(a_bits, False, 1 / 16)
    layers = []
    prev = "x"
    t = in_type
    for idx in range(n):
        last = idx == n - 1
        out_t = QType(a_bits, last, 0.1)
        lay = _weighted_layer(rng, f"fc{idx + 1}", ir.Dense(units=sizes[idx + 1]), prev, (sizes[idx],),
                              (sizes[idx + 1],), t, out_t, w_list[idx], sizes[idx], t.qmax,
                              bitserial_lanes=bs_list[idx], sparsity=sparsity)
        layers.append(lay)
        prev = lay.name
        if not last:
            relu = IntLayer(name=f"relu{idx + 1}", op=ir.ReLU(), inputs=(prev,), in_shapes=((sizes[idx + 1],),),
                            out_shape=(sizes[idx + 1],), in_types=(out_t,), out_type=out_t)
            layers.append(relu)
            prev = relu.name
        t = out_t
    return IntModel(name=name, inputs=(IntInput("x", (sizes[0],), in_type),), layers=tuple(layers), outputs=(prev,))


def random_convnet(*, seed: int, image: int = 6, channels: int = 4, classes: int = 5, pool: ir.PoolKind = ir.PoolKind.MAX,
                   conv_bitserial_lanes=None, name: str = "convnet") -> IntModel:
    """conv3x3(pad 1) -> relu (fused) -> pool 2 -> conv3x3 (pad 0, stride 1) -> relu -> flatten -> dense."""
    rng = np.random.default_rng(seed)
    u8 = QType(8, False, 1 / 16)
    s8 = QType(8, True, 0.1)
    layers = []
    c1 = _weighted_layer(rng, "c1", ir.Conv2d(channels=channels, kernel=3, padding=1), "x", (1, image, image),
                         (channels, image, image), u8, u8, 8, 9, 255, per_channel=True,
                         bitserial_lanes=conv_bitserial_lanes)
    layers.append(c1)
    layers.append(IntLayer(name="r1", op=ir.ReLU(), inputs=("c1",), in_shapes=(c1.out_shape,), out_shape=c1.out_shape,
                           in_types=(u8,), out_type=u8))
    half = image // 2
    p_shape = (channels, half, half)
    rq = None
    if pool is ir.PoolKind.AVG:
        mult, shift = avg_multiplier(2)
        rq = Requant(np.array([mult]), np.array([shift]), u8.qmin, u8.qmax)
    layers.append(IntLayer(name="p1", op=ir.Pool(pool, 2, 2), inputs=("r1",), in_shapes=(c1.out_shape,),
                           out_shape=p_shape, in_types=(u8,), out_type=u8, requant=rq))
    c2_out = (channels, half - 2, half - 2)
    c2 = _weighted_layer(rng, "c2", ir.Conv2d(channels=channels, kernel=3), "p1", p_shape, c2_out, u8, s8, 4,
                         9 * channels, 255)
    layers.append(c2)
    layers.append(IntLayer(name="r2", op=ir.ReLU(), inputs=("c2",), in_shapes=(c2_out,), out_shape=c2_out,
                           in_types=(s8,), out_type=u8))
    flat = (math.prod(c2_out),)
    layers.append(IntLayer(name="f", op=ir.Flatten(), inputs=("r2",), in_shapes=(c2_out,), out_shape=flat,
                           in_types=(u8,), out_type=u8))
    fc = _weighted_layer(rng, "fc", ir.Dense(units=classes), "f", flat, (classes,), u8, s8, 8, flat[0], 255)
    layers.append(fc)
    return IntModel(name=name, inputs=(IntInput("x", (1, image, image), u8),), layers=tuple(layers), outputs=("fc",))

"""IntModels built by hand or with random integer weights, for golden, hardware and flow tests.

Layer builders (`dense`, `conv2d`, `relu`, `maxpool`, `avgpool`, `flatten`, `sign`) make one
`IntLayer` with its typed payload; `random_mlp` and `random_convnet` chain them. Requantization
scales are chosen so that typical accumulators land inside the output range (some saturate, which
the tests want too). Nothing here is trained.
"""

from __future__ import annotations

import math

import numpy as np

from cdsl.contract.intmodel import IntInput, IntLayer, IntModel, QType, Requant
from cdsl.contract.ref.activation import ReluPayload, SignPayload
from cdsl.contract.ref.bitserial_mac import BitSerialCore
from cdsl.contract.ref.conv2d import Conv2dPayload
from cdsl.contract.ref.dense import DensePayload
from cdsl.contract.ref.flatten import FlattenPayload
from cdsl.contract.ref.mac import ParallelCore
from cdsl.contract.ref.pool import AvgPoolPayload, MaxPoolPayload, avg_multiplier
from cdsl.contract.ref.requant import quantize_multiplier
from cdsl.dsl import ir

U8 = QType(8, False, 1 / 16)
S8 = QType(8, True, 0.1)


def requant(reals, out: QType) -> Requant:
    """Requant of real scales `reals` (one per channel, or one) onto `out`'s range."""
    pairs = [quantize_multiplier(float(r)) for r in np.atleast_1d(reals)]
    return Requant(np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.int64),
                   out.qmin, out.qmax)


def core(lanes: int | None = None, *, bitserial: bool = False):
    return BitSerialCore(lanes=lanes or 1) if bitserial else ParallelCore(lanes=lanes)


def _weighted_fields(weight, *, w_bits, bias, rq, core_, per_channel):
    weight = np.asarray(weight, dtype=np.int64)
    out = weight.shape[0]
    return dict(weight=weight.reshape(out, -1), bias=None if bias is None else np.asarray(bias, dtype=np.int64),
                w_bits=w_bits, w_scale=np.ones(out if per_channel else 1), mask=weight.reshape(out, -1) != 0,
                requant=rq, core=core_)


def dense(name, src, weight, *, in_type: QType, out_type: QType, rq: Requant, w_bits: int = 8, bias=None,
          core_=None) -> IntLayer:
    w = np.asarray(weight)
    payload = DensePayload(**_weighted_fields(w, w_bits=w_bits, bias=bias, rq=rq, core_=core_ or ParallelCore(),
                                              per_channel=len(rq.multiplier) > 1))
    return IntLayer(name, (src,), ((w.shape[1],),), (in_type,), (w.shape[0],), out_type, payload)


def conv2d(name, src, weight, *, in_shape, in_type: QType, out_type: QType, rq: Requant, stride: int = 1,
           padding: int = 0, w_bits: int = 8, bias=None, core_=None) -> IntLayer:
    w = np.asarray(weight)
    co, _, k, _ = w.shape
    c, h, wd = in_shape
    out_shape = (co, (h + 2 * padding - k) // stride + 1, (wd + 2 * padding - k) // stride + 1)
    payload = Conv2dPayload(**_weighted_fields(w, w_bits=w_bits, bias=bias, rq=rq, core_=core_ or ParallelCore(),
                                               per_channel=len(rq.multiplier) > 1),
                            kernel=k, stride=stride, padding=padding)
    return IntLayer(name, (src,), (tuple(in_shape),), (in_type,), out_shape, out_type, payload)


def _same(name, src, shape, in_type, out_type, payload, out_shape=None) -> IntLayer:
    return IntLayer(name, (src,), (tuple(shape),), (in_type,), tuple(out_shape or shape), out_type, payload)


def relu(name, src, shape, in_type: QType, out_type: QType | None = None) -> IntLayer:
    return _same(name, src, shape, in_type, out_type or in_type, ReluPayload())


def sign(name, src, shape, in_type: QType) -> IntLayer:
    return _same(name, src, shape, in_type, QType(2, True, 1.0), SignPayload())


def flatten(name, src, shape, in_type: QType) -> IntLayer:
    return _same(name, src, shape, in_type, in_type, FlattenPayload(), (math.prod(shape),))


def _pooled(shape, kernel, stride):
    c, h, w = shape
    return (c, (h - kernel) // stride + 1, (w - kernel) // stride + 1)


def maxpool(name, src, shape, in_type: QType, *, kernel: int, stride: int | None = None) -> IntLayer:
    stride = stride or kernel
    return _same(name, src, shape, in_type, in_type, MaxPoolPayload(kernel=kernel, stride=stride),
                 _pooled(shape, kernel, stride))


def avgpool(name, src, shape, in_type: QType, *, kernel: int, stride: int | None = None) -> IntLayer:
    stride = stride or kernel
    m, s = avg_multiplier(kernel)
    rq = Requant(np.array([m]), np.array([s]), in_type.qmin, in_type.qmax)
    return _same(name, src, shape, in_type, in_type, AvgPoolPayload(kernel=kernel, stride=stride, requant=rq),
                 _pooled(shape, kernel, stride))


# ---------------------------------------------------------------- random models


def _random_requant(rng, channels: int, k: int, x_max: int, w_bits: int, out: QType) -> Requant:
    spread = math.sqrt(k) * x_max * (1 << (w_bits - 1)) / 2
    return requant(rng.uniform(0.5, 2.0, size=channels) * (out.qmax / spread), out)


def random_weights(rng, shape, w_bits: int, sparsity: float = 0.0) -> np.ndarray:
    lo, hi = ir.int_range(w_bits, True)
    w = rng.integers(lo, hi + 1, size=shape, dtype=np.int64)
    if sparsity:
        w[rng.random(shape) < sparsity] = 0
    return w


def _random_bias(rng, channels: int, k: int, x_max: int, w_bits: int) -> np.ndarray:
    span = max(1, int(math.sqrt(k) * x_max * (1 << (w_bits - 1)) // 4))
    return rng.integers(-span, span + 1, size=channels)


def random_dense(rng, name, src, k, n, *, in_type, out_type, w_bits=8, per_channel=False, sparsity=0.0,
                 lanes=None, bitserial=False) -> IntLayer:
    w = random_weights(rng, (n, k), w_bits, sparsity)
    rq = _random_requant(rng, n if per_channel else 1, k, in_type.qmax, w_bits, out_type)
    return dense(name, src, w, in_type=in_type, out_type=out_type, rq=rq, w_bits=w_bits,
                 bias=_random_bias(rng, n, k, in_type.qmax, w_bits), core_=core(lanes, bitserial=bitserial))


def random_conv(rng, name, src, in_shape, channels, kernel, *, in_type, out_type, w_bits=8, per_channel=True,
                stride=1, padding=0, lanes=None, bitserial=False) -> IntLayer:
    k = in_shape[0] * kernel * kernel
    w = random_weights(rng, (channels, in_shape[0], kernel, kernel), w_bits)
    rq = _random_requant(rng, channels if per_channel else 1, k, in_type.qmax, w_bits, out_type)
    return conv2d(name, src, w, in_shape=in_shape, in_type=in_type, out_type=out_type, rq=rq, stride=stride,
                  padding=padding, w_bits=w_bits, bias=_random_bias(rng, channels, k, in_type.qmax, w_bits),
                  core_=core(lanes, bitserial=bitserial))


def random_mlp(sizes, *, seed: int, w_bits=8, a_bits: int = 8, bitserial_lanes=None, sparsity: float = 0.0,
               name: str = "mlp") -> IntModel:
    """Dense layers sizes[0] -> sizes[1] -> ... with fused ReLUs (unsigned hidden outputs) and
    a signed last layer. `w_bits` and `bitserial_lanes` may be one value or one per layer."""
    rng = np.random.default_rng(seed)
    n = len(sizes) - 1
    w_list = list(w_bits) if isinstance(w_bits, (list, tuple)) else [w_bits] * n
    bs_list = list(bitserial_lanes) if isinstance(bitserial_lanes, (list, tuple)) else [bitserial_lanes] * n
    t = QType(a_bits, False, 1 / 16)
    inputs = (IntInput("x", (sizes[0],), t),)
    layers = []
    prev = "x"
    for idx in range(n):
        last = idx == n - 1
        out_t = QType(a_bits, last, 0.1)
        lay = random_dense(rng, f"fc{idx + 1}", prev, sizes[idx], sizes[idx + 1], in_type=t, out_type=out_t,
                           w_bits=w_list[idx], sparsity=sparsity, lanes=bs_list[idx], bitserial=bs_list[idx] is not None)
        layers.append(lay)
        prev = lay.name
        if not last:
            layers.append(relu(f"relu{idx + 1}", prev, (sizes[idx + 1],), out_t))
            prev = layers[-1].name
        t = out_t
    return IntModel(name=name, inputs=inputs, layers=tuple(layers), outputs=(prev,))


def random_convnet(*, seed: int, image: int = 6, channels: int = 4, classes: int = 5, pool: str = "max",
                   conv_bitserial_lanes=None, name: str = "convnet") -> IntModel:
    """conv3x3(pad 1) -> relu (fused) -> pool 2 -> conv3x3 (pad 0, stride 1) -> relu -> flatten -> dense."""
    rng = np.random.default_rng(seed)
    c1 = random_conv(rng, "c1", "x", (1, image, image), channels, 3, in_type=U8, out_type=U8, padding=1,
                     lanes=conv_bitserial_lanes, bitserial=conv_bitserial_lanes is not None)
    r1 = relu("r1", "c1", c1.out_shape, U8)
    pooling = maxpool if pool == "max" else avgpool
    p1 = pooling("p1", "r1", c1.out_shape, U8, kernel=2)
    c2 = random_conv(rng, "c2", "p1", p1.out_shape, channels, 3, in_type=U8, out_type=S8, w_bits=4, per_channel=False)
    r2 = relu("r2", "c2", c2.out_shape, S8, U8)
    f = flatten("f", "r2", c2.out_shape, U8)
    fc = random_dense(rng, "fc", "f", f.out_shape[0], classes, in_type=U8, out_type=S8)
    return IntModel(name=name, inputs=(IntInput("x", (1, image, image), U8),), layers=(c1, r1, p1, c2, r2, f, fc),
                    outputs=("fc",))


def add(name, a: IntLayer | IntInput, b: IntLayer | IntInput, *, out_type: QType) -> IntLayer:
    """add(a, b) onto `out_type`, with the multipliers of the contract (`add_multipliers`)."""
    from cdsl.contract.ref.add import AddPayload, add_multipliers

    def tensor(t):
        return (t.name, t.out_shape, t.out_type) if isinstance(t, IntLayer) else (t.name, t.shape, t.qtype)

    (na, sa, ta), (nb, sb, tb) = tensor(a), tensor(b)
    ma, mb, shift = add_multipliers(ta.scale, tb.scale, out_type.scale)
    payload = AddPayload(mult_a=ma, mult_b=mb, shift=shift, qmin=out_type.qmin, qmax=out_type.qmax)
    return IntLayer(name, (na, nb), (tuple(sa), tuple(sb)), (ta, tb), tuple(sa), out_type, payload)


def random_residual(*, seed: int, width: int = 12, classes: int = 4, lanes=None) -> IntModel:
    """x -> fc1 -> relu -> fc2 -> relu -> s = add(relu2, relu1) -> fc3: a residual join around fc2."""
    rng = np.random.default_rng(seed)
    x = IntInput("x", (width,), U8)
    fc1 = random_dense(rng, "fc1", "x", width, width, in_type=U8, out_type=QType(8, False, 0.07))
    r1 = relu("r1", "fc1", (width,), fc1.out_type)
    fc2 = random_dense(rng, "fc2", "r1", width, width, in_type=r1.out_type, out_type=QType(8, False, 0.05),
                       lanes=lanes, bitserial=lanes is not None)
    r2 = relu("r2", "fc2", (width,), fc2.out_type)
    s = add("s", r2, r1, out_type=QType(8, False, 0.1))
    fc3 = random_dense(rng, "fc3", "s", width, classes, in_type=s.out_type, out_type=S8)
    return IntModel("residual", (x,), (fc1, r1, fc2, r2, s, fc3), ("fc3",))


def digits_mlp(seed: int) -> IntModel:
    """The shape and mapping of examples/mlp.cdsl: 64 -> 64 (bit-serial, 8 lanes) -> 32 (4-bit, 2:4) -> 10."""
    return random_mlp([64, 64, 32, 10], seed=seed, w_bits=[8, 4, 8], bitserial_lanes=[8, None, None],
                      sparsity=0.3)


def pooled_join_cnn(seed: int) -> IntModel:
    """x [1,6,6] -> c1 3x3 pad 1 [4,6,6] -> relu -> maxpool 2 [4,3,3] -> c2 3x3 pad 1 -> relu
    -> s = add(r2, p1) (a join around c2) -> flatten -> fc [5]."""
    rng = np.random.default_rng(seed)
    c1 = random_conv(rng, "c1", "x", (1, 6, 6), 4, 3, in_type=U8, out_type=U8, padding=1)
    r1 = relu("r1", "c1", c1.out_shape, U8)
    p1 = maxpool("p1", "r1", c1.out_shape, U8, kernel=2)
    c2 = random_conv(rng, "c2", "p1", p1.out_shape, 4, 3, in_type=U8, out_type=QType(8, False, 0.05), padding=1,
                     w_bits=4)
    r2 = relu("r2", "c2", c2.out_shape, c2.out_type)
    s = add("s", r2, p1, out_type=QType(8, False, 0.1))
    f = flatten("f", "s", s.out_shape, s.out_type)
    fc = random_dense(rng, "fc", "f", f.out_shape[0], 5, in_type=s.out_type, out_type=S8)
    return IntModel("pooled_join", (IntInput("x", (1, 6, 6), U8),), (c1, r1, p1, c2, r2, s, f, fc), ("fc",))


def random_two_heads(*, seed: int, width: int = 10, classes: int = 3) -> IntModel:
    """x -> fc1 -> relu; two heads read it: y1 = fc_a(relu), y2 = fc_b(relu) (a fork, two outputs)."""
    rng = np.random.default_rng(seed)
    fc1 = random_dense(rng, "fc1", "x", width, width, in_type=U8, out_type=QType(8, False, 0.07))
    r1 = relu("r1", "fc1", (width,), fc1.out_type)
    ya = random_dense(rng, "ya", "r1", width, classes, in_type=r1.out_type, out_type=S8)
    yb = random_dense(rng, "yb", "r1", width, classes + 2, in_type=r1.out_type, out_type=S8, lanes=2,
                      bitserial=True)
    return IntModel("two_heads", (IntInput("x", (width,), U8),), (fc1, r1, ya, yb), ("ya", "yb"))


def random_two_inputs(*, seed: int, width: int = 8, classes: int = 3) -> IntModel:
    """Two inputs joined: s = add(fc_a(xa), xb), then a dense head; xb is a model input read twice
    (by the join and by a second output head), so it is forked too."""
    rng = np.random.default_rng(seed)
    xa, xb = IntInput("xa", (width,), U8), IntInput("xb", (width,), QType(8, False, 1 / 8))
    fa = random_dense(rng, "fa", "xa", width, width, in_type=U8, out_type=QType(8, False, 0.06))
    s = add("s", fa, xb, out_type=QType(9, False, 0.1))
    y = random_dense(rng, "y", "s", width, classes, in_type=s.out_type, out_type=S8)
    yb = random_dense(rng, "yb", "xb", width, classes, in_type=xb.qtype, out_type=S8)
    return IntModel("two_inputs", (xa, xb), (fa, s, y, yb), ("y", "yb"))


# ---------------------------------------------------------------- binary layers (@binary, @binary @aqfp)

MARGIN = QType(2, True, 1.0)  # a binary layer's margin clamped to 2 bits: only its sign is read
SIGNS = QType(2, True, 1.0)  # the +1/-1 codes of sign


def aqfp_core(rng, *, fan_in: int, taps: int, outputs: int, group: int, T: int = 4, seed: int = 5,
              gray: float = 1.0, atten: float = 0.0625):
    """An AqfpCore with thresholds around half the groups firing per cycle."""
    from cdsl.contract.ref import aqfp_accumulator as aq

    groups = aq.groups_of(fan_in, group=group, taps=taps)
    partial = None if groups.partial == group else aq.bit_table(groups.partial, gray=gray, atten=atten)
    full = groups.count * (1 << aq.TAU_FRAC)
    tau = rng.integers(full // 4, 3 * full // 4, size=outputs)
    return aq.AqfpCore(group=group, taps=taps, T=T, t_max=max(T, aq.T_MAX_MIN), seed=seed,
                       table=aq.bit_table(group, gray=gray, atten=atten), table_partial=partial, tau=tau, gray=gray,
                       atten=atten)


def binary_layer(rng, name, src, in_shape, outputs, *, kernel: int | None = None, padding: int = 0,
                 group: int | None = None, T: int = 4, seed: int = 5) -> IntLayer:
    """A binary dense (kernel None) or conv layer: +1/-1 weights, a margin clamped to MARGIN; on the AQFP
    accumulator when `group` is given, else on the bit-parallel MAC with a threshold bias."""
    c = in_shape[0]
    taps = 1 if kernel is None else kernel * kernel
    k = (math.prod(in_shape) if kernel is None else c * taps)
    weight = rng.choice([-1, 1], size=(outputs, k)).astype(np.int64)
    rq = Requant(np.ones(1, dtype=np.int64), np.zeros(1, dtype=np.int64), MARGIN.qmin, MARGIN.qmax)
    if group is None:
        core_, bias = ParallelCore(), -rng.integers(-k // 3, k // 3 + 1, size=outputs)
    else:
        core_, bias = aqfp_core(rng, fan_in=k, taps=taps, outputs=outputs, group=group, T=T, seed=seed), None
    fields = dict(weight=weight, bias=bias, w_bits=2, w_scale=np.ones(1), mask=None, requant=rq, core=core_)
    if kernel is None:
        return IntLayer(name, (src,), (tuple(in_shape),), (SIGNS,), (outputs,), MARGIN, DensePayload(**fields))
    _, h, w = in_shape
    out_shape = (outputs, h + 2 * padding - kernel + 1, w + 2 * padding - kernel + 1)
    payload = Conv2dPayload(**fields, kernel=kernel, stride=1, padding=padding)
    return IntLayer(name, (src,), (tuple(in_shape),), (SIGNS,), out_shape, MARGIN, payload)


def random_bnn(*, seed: int, conv: bool = False, group: int | None = 4, T: int = 4, width: int = 10,
               classes: int = 3) -> IntModel:
    """A fixed-point first layer, sign, a binary layer (AQFP with groups of `group`, or deterministic when
    None), sign, a fixed-point classifier. Dense: x[12] -> fc1[width] -> s1 -> b[6] -> s2 -> y. Conv:
    x[1,5,5] -> c1 3x3 pad 1 [3,5,5] -> s1 -> b 2x2 pad 1 [4,6,6] -> s2 -> flatten -> y."""
    rng = np.random.default_rng(seed)
    if conv:
        first = random_conv(rng, "c1", "x", (1, 5, 5), 3, 3, in_type=U8, out_type=S8, padding=1)
        s1 = sign("s1", "c1", first.out_shape, S8)
        b = binary_layer(rng, "b", "s1", first.out_shape, 4, kernel=2, padding=1, group=group, T=T)
        s2 = sign("s2", "b", b.out_shape, MARGIN)
        f = flatten("f", "s2", b.out_shape, SIGNS)
        y = random_dense(rng, "y", "f", f.out_shape[0], classes, in_type=SIGNS, out_type=S8)
        layers = (first, s1, b, s2, f, y)
        x = IntInput("x", (1, 5, 5), U8)
    else:
        first = random_dense(rng, "fc1", "x", 12, width, in_type=U8, out_type=S8)
        s1 = sign("s1", "fc1", (width,), S8)
        b = binary_layer(rng, "b", "s1", (width,), 6, group=group, T=T)
        s2 = sign("s2", "b", (6,), MARGIN)
        y = random_dense(rng, "y", "s2", 6, classes, in_type=SIGNS, out_type=S8)
        layers = (first, s1, b, s2, y)
        x = IntInput("x", (12,), U8)
    return IntModel("bnn", (x,), layers, ("y",))

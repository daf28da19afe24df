"""LayerEngine (frame buffer + window generator + MAC/pool + requant) against hw/ref, with cycles."""

import dataclasses

import numpy as np
import pytest

from cdsl.hw.layer_engine import LayerEngine
from cdsl.hw.plan import EngineKind, engine_delay
from tb.pysim import run_streams
from cdsl.contract.ref.requant import quantize_multiplier
from tb.engine_cases import pool_config, pool_reference, reference, weighted_config


def check(cfg, x, *, seed, precision=0, backpressure=True):
    want = reference(cfg, x, precision)
    ports = {"precision": precision} if cfg.bitserial else None
    got, cycles = run_streams(LayerEngine(config=cfg), x.reshape(-1).tolist(), n_out=cfg.n_out, ports=ports)
    assert got == want, f"seed={seed} precision={precision}"
    assert cycles == cfg.n_in + engine_delay(cfg, precision=precision), f"seed={seed}"
    if backpressure:
        got, _ = run_streams(LayerEngine(config=cfg), x.reshape(-1).tolist(), n_out=cfg.n_out, ports=ports,
                             seed=seed, in_stall=0.3, out_stall=0.4)
        assert got == want, f"seed={seed} precision={precision} (backpressure)"


@pytest.mark.parametrize("k,co,lanes", [(16, 8, 4), (13, 5, 3), (7, 3, 1), (10, 4, 16)])
def test_dense_engine(k, co, lanes):
    seed = k * 100 + lanes
    rng = np.random.default_rng(seed)
    cfg = weighted_config(rng, kind=EngineKind.DENSE, in_shape=(k, 1, 1), co=co, lanes=min(lanes, k))
    check(cfg, rng.integers(0, 256, size=(k, 1, 1)), seed=seed)


@pytest.mark.parametrize("in_shape,co,kernel,stride,padding,lanes", [
    ((1, 6, 6), 3, 3, 1, 1, 1), ((3, 5, 5), 2, 3, 2, 1, 2), ((4, 4, 4), 2, 2, 1, 0, 4), ((2, 5, 4), 3, 3, 1, 0, 1),
])
def test_conv_engine(in_shape, co, kernel, stride, padding, lanes):
    seed = sum(in_shape) * 1000 + kernel * 10 + stride + padding
    rng = np.random.default_rng(seed)
    cfg = weighted_config(rng, kind=EngineKind.CONV, in_shape=in_shape, co=co, kernel=kernel, stride=stride,
                          padding=padding, lanes=lanes, per_channel=True)
    check(cfg, rng.integers(0, 256, size=in_shape), seed=seed)


def test_dense_engine_extremes_do_not_wrap():
    rng = np.random.default_rng(5)
    k = 64
    for wv in (-128, 127):
        cfg = weighted_config(rng, kind=EngineKind.DENSE, in_shape=(k, 1, 1), co=2, lanes=8,
                              weight=np.full((2, k, 1, 1), wv), bias=False)
        # choose M, S so the full-scale accumulator lands inside the output range
        mult, shift = quantize_multiplier(100 / (k * 255 * 128))
        cfg = dataclasses.replace(cfg, multipliers=(mult,), shifts=(shift,))
        x = np.full((k, 1, 1), 255)
        assert cfg.acc_range[0] <= -128 * 255 * k and 127 * 255 * k <= cfg.acc_range[1]
        want = reference(cfg, x)
        assert want[0] in (-100, 99, 100) and abs(want[0]) >= 99  # not saturated, not wrapped
        check(cfg, x, seed=5, backpressure=False)


@pytest.mark.parametrize("lanes,w_bits", [(4, 8), (2, 4)])
def test_bitserial_dense_engine_every_precision(lanes, w_bits):
    seed = 300 + lanes * 10 + w_bits
    rng = np.random.default_rng(seed)
    k, co = 12, 4
    lo, hi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
    weight = rng.integers(lo, hi + 1, size=(co, k, 1, 1))
    weight[1] = rng.choice([0, 1, 4], size=(k, 1, 1)) if w_bits > 3 else 0  # holes in the plane mask
    weight[2] = 0  # no active plane at all
    cfg = weighted_config(rng, kind=EngineKind.DENSE, in_shape=(k, 1, 1), co=co, lanes=lanes, bitserial=True,
                          w_bits=w_bits, weight=weight)
    x = rng.integers(0, 256, size=(k, 1, 1))
    for p in range(0, w_bits + 1):
        check(cfg, x, seed=seed, precision=p, backpressure=p == w_bits // 2)


def test_bitserial_conv_engine():
    seed = 77
    rng = np.random.default_rng(seed)
    cfg = weighted_config(rng, kind=EngineKind.CONV, in_shape=(3, 4, 4), co=2, kernel=3, padding=1, lanes=2,
                          bitserial=True, w_bits=4, per_channel=True)
    x = rng.integers(0, 256, size=(3, 4, 4))
    for p in (0, 1, 3):
        check(cfg, x, seed=seed, precision=p, backpressure=p == 3)


@pytest.mark.parametrize("kind", [EngineKind.MAXPOOL, EngineKind.AVGPOOL])
@pytest.mark.parametrize("in_shape,kernel,stride", [((2, 4, 4), 2, 2), ((3, 5, 5), 3, 2)])
def test_pool_engine(kind, in_shape, kernel, stride):
    seed = kernel * 10 + in_shape[0]
    rng = np.random.default_rng(seed)
    cfg = pool_config(kind=kind, in_shape=in_shape, kernel=kernel, stride=stride)
    for x in (rng.integers(0, 256, size=in_shape), np.full(in_shape, 255), np.zeros(in_shape, dtype=np.int64)):
        want = pool_reference(cfg, x)
        got, cycles = run_streams(LayerEngine(config=cfg), x.reshape(-1).tolist(), n_out=cfg.n_out)
        assert got == want, f"seed={seed}"
        assert cycles == cfg.n_in + engine_delay(cfg)
    got, _ = run_streams(LayerEngine(config=cfg), x.reshape(-1).tolist(), n_out=cfg.n_out, seed=seed,
                         in_stall=0.3, out_stall=0.4)
    assert got == want, f"seed={seed} (backpressure)"

"""MacEngine and PoolEngine in amaranth.sim against cdsl.contract.ref, with cycles against the node's model."""

import numpy as np
import pytest

from tb.engine_cases import pool_node, pool_reference, reference, weighted_node
from tb.pysim import run_streams

from cdsl.contract.ref.requant import quantize_multiplier


def check(node, x, *, seed, precision=0, backpressure=True):
    want = reference(node, x, precision)
    ports = {s.name: precision for s in node.settings()}
    engine = node.component
    words = x.reshape(-1).tolist()
    got, cycles = run_streams(engine(), words, n_out=node.out_type.words, ports=ports)
    assert got == want, f"seed={seed} precision={precision}"
    assert cycles == node.in_types[0].words + node.delay({"precision": precision}), f"seed={seed}"
    if backpressure:
        got, _ = run_streams(engine(), words, n_out=node.out_type.words, ports=ports, seed=seed, in_stall=0.3,
                             out_stall=0.4)
        assert got == want, f"seed={seed} precision={precision} (backpressure)"


@pytest.mark.parametrize("k,co,lanes", [(16, 8, 4), (13, 5, 3), (7, 3, 1), (10, 4, 16)])
def test_dense_engine(k, co, lanes):
    seed = k * 100 + lanes
    rng = np.random.default_rng(seed)
    node = weighted_node(rng, in_shape=(k, 1, 1), co=co, lanes=lanes, dense=True)
    assert node.lanes == min(lanes, k)
    check(node, rng.integers(0, 256, size=(k, 1, 1)), seed=seed)


@pytest.mark.parametrize("in_shape,co,kernel,stride,padding,lanes", [
    ((1, 6, 6), 3, 3, 1, 1, 1), ((3, 5, 5), 2, 3, 2, 1, 2), ((4, 4, 4), 2, 2, 1, 0, 4), ((2, 5, 4), 3, 3, 1, 0, 1),
])
def test_conv_engine(in_shape, co, kernel, stride, padding, lanes):
    seed = sum(in_shape) * 1000 + kernel * 10 + stride + padding
    rng = np.random.default_rng(seed)
    node = weighted_node(rng, in_shape=in_shape, co=co, kernel=kernel, stride=stride, padding=padding, lanes=lanes,
                         per_channel=True)
    check(node, rng.integers(0, 256, size=in_shape), seed=seed)


def test_dense_engine_extremes_do_not_wrap():
    rng = np.random.default_rng(5)
    k = 64
    real = 100 / (k * 255 * 128)  # the full-scale accumulator lands inside the output range
    for wv in (-128, 127):
        node = weighted_node(rng, in_shape=(k, 1, 1), co=2, lanes=8, weight=np.full((2, k, 1, 1), wv), bias=False,
                             dense=True, reals=[real])
        assert (node.multipliers[0], node.shifts[0]) == quantize_multiplier(real)
        x = np.full((k, 1, 1), 255)
        assert node.acc_range[0] <= -128 * 255 * k and 127 * 255 * k <= node.acc_range[1]
        want = reference(node, x)
        assert want[0] in (-100, 99, 100) and abs(want[0]) >= 99  # not saturated, not wrapped
        check(node, x, seed=5, backpressure=False)


@pytest.mark.parametrize("lanes,w_bits", [(4, 8), (2, 4)])
def test_bitserial_dense_engine_every_precision(lanes, w_bits):
    seed = 300 + lanes * 10 + w_bits
    rng = np.random.default_rng(seed)
    k, co = 12, 4
    lo, hi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
    weight = rng.integers(lo, hi + 1, size=(co, k, 1, 1))
    weight[1] = rng.choice([0, 1, 4], size=(k, 1, 1)) if w_bits > 3 else 0  # holes in the plane mask
    weight[2] = 0  # no active plane at all
    node = weighted_node(rng, in_shape=(k, 1, 1), co=co, lanes=lanes, bitserial=True, w_bits=w_bits, weight=weight,
                         dense=True)
    x = rng.integers(0, 256, size=(k, 1, 1))
    for p in range(0, w_bits + 1):
        check(node, x, seed=seed, precision=p, backpressure=p == w_bits // 2)


def test_bitserial_conv_engine():
    seed = 77
    rng = np.random.default_rng(seed)
    node = weighted_node(rng, in_shape=(3, 4, 4), co=2, kernel=3, padding=1, lanes=2, bitserial=True, w_bits=4,
                         per_channel=True)
    x = rng.integers(0, 256, size=(3, 4, 4))
    for p in (0, 1, 3):
        check(node, x, seed=seed, precision=p, backpressure=p == 3)


@pytest.mark.parametrize("average", [False, True])
@pytest.mark.parametrize("in_shape,kernel,stride", [((2, 4, 4), 2, 2), ((3, 5, 5), 3, 2)])
def test_pool_engine(average, in_shape, kernel, stride):
    seed = kernel * 10 + in_shape[0]
    rng = np.random.default_rng(seed)
    node = pool_node(average=average, in_shape=in_shape, kernel=kernel, stride=stride)
    for x in (rng.integers(0, 256, size=in_shape), np.full(in_shape, 255), np.zeros(in_shape, dtype=np.int64)):
        want = pool_reference(node, x)
        got, cycles = run_streams(node.component(), x.reshape(-1).tolist(), n_out=node.out_type.words)
        assert got == want, f"seed={seed}"
        assert cycles == node.in_types[0].words + node.delay({})
    got, _ = run_streams(node.component(), x.reshape(-1).tolist(), n_out=node.out_type.words, seed=seed,
                         in_stall=0.3, out_stall=0.4)
    assert got == want, f"seed={seed} (backpressure)"


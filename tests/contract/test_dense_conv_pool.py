"""The dense/conv2d/pool/activation references against explicit Python-integer loops."""

import math

import numpy as np
import pytest
import torch

from cdsl.contract.ref.activation import relu, sign
from cdsl.contract.ref.conv2d import conv2d
from cdsl.contract.ref.dense import dense
from cdsl.contract.ref.pool import avg_multiplier, avgpool, maxpool
from cdsl.contract.ref.requant import quantize_multiplier


def _rand(gen, lo, hi, shape):
    return torch.randint(lo, hi + 1, shape, generator=gen, dtype=torch.int64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_matches_loops(seed):
    gen = torch.Generator().manual_seed(seed)
    x = _rand(gen, -128, 127, (3, 7))
    w = _rand(gen, -128, 127, (5, 7))
    b = _rand(gen, -(1 << 20), 1 << 20, (5,))
    got = dense(x, w, b)
    for n in range(3):
        for o in range(5):
            want = int(b[o]) + sum(int(x[n, k]) * int(w[o, k]) for k in range(7))
            assert int(got[n, o]) == want, f"seed={seed} n={n} o={o}"
    assert got.dtype == torch.int64
    assert torch.equal(dense(x, w), got - b)


def test_dense_extremes_no_wrap():
    # 16-bit operands at the extremes and a long dot product: far beyond int32.
    k = 4096
    x = torch.full((1, k), -(1 << 15), dtype=torch.int64)
    w = torch.full((2, k), -(1 << 15), dtype=torch.int64)
    w[1] = (1 << 15) - 1
    got = dense(x, w)
    assert int(got[0, 0]) == k * (1 << 30)
    assert int(got[0, 1]) == k * (-(1 << 15)) * ((1 << 15) - 1)


def test_dense_numpy_in_numpy_out():
    x = np.array([[1, 2, 3]], dtype=np.int32)
    w = np.array([[1, 0, -1], [2, 2, 2]], dtype=np.int8)
    got = dense(x, w, np.array([10, -1]))
    assert isinstance(got, np.ndarray) and got.dtype == np.int64
    assert got.tolist() == [[8, 11]]


def test_dense_refuses_float():
    with pytest.raises(TypeError):
        dense(torch.ones(2, 3), torch.ones(1, 3, dtype=torch.int64))


def _conv_loops(x, w, b, stride, padding):
    c_in, h, wd = x.shape
    c_out, _, k, _ = w.shape
    ho = (h + 2 * padding - k) // stride + 1
    wo = (wd + 2 * padding - k) // stride + 1
    out = [[[0] * wo for _ in range(ho)] for _ in range(c_out)]
    for o in range(c_out):
        for i in range(ho):
            for j in range(wo):
                s = int(b[o]) if b is not None else 0
                for c in range(c_in):
                    for a in range(k):
                        for bb in range(k):
                            r, q = i * stride + a - padding, j * stride + bb - padding
                            if 0 <= r < h and 0 <= q < wd:
                                s += int(x[c, r, q]) * int(w[o, c, a, bb])
                out[o][i][j] = s
    return out


@pytest.mark.parametrize("stride,padding,k,h,w", [(1, 0, 3, 5, 5), (1, 1, 3, 8, 8), (2, 1, 3, 7, 6), (2, 0, 2, 6, 6), (1, 2, 1, 3, 4)])
def test_conv2d_matches_loops(stride, padding, k, h, w):
    gen = torch.Generator().manual_seed(100 + stride * 10 + padding)
    x = _rand(gen, -128, 127, (2, 3, h, w))
    wt = _rand(gen, -8, 7, (4, 3, k, k))
    b = _rand(gen, -1000, 1000, (4,))
    got = conv2d(x, wt, b, stride=stride, padding=padding)
    for n in range(2):
        want = _conv_loops(x[n], wt, b, stride, padding)
        assert got[n].tolist() == want, f"n={n}"
    # no batch dimension works too
    assert torch.equal(conv2d(x[0], wt, b, stride=stride, padding=padding), got[0])
    assert torch.equal(conv2d(x, wt, None, stride=stride, padding=padding), got - b[:, None, None])


def test_conv2d_agrees_with_float64_torch():
    # Values exactly representable in float64: torch's float conv gives the same integers.
    gen = torch.Generator().manual_seed(7)
    x = _rand(gen, 0, 255, (4, 2, 8, 8))
    w = _rand(gen, -128, 127, (5, 2, 3, 3))
    b = _rand(gen, -5000, 5000, (5,))
    got = conv2d(x, w, b, stride=1, padding=1)
    want = torch.nn.functional.conv2d(x.double(), w.double(), b.double(), stride=1, padding=1)
    assert torch.equal(got, want.to(torch.int64))


def test_maxpool_matches_loops():
    gen = torch.Generator().manual_seed(3)
    x = _rand(gen, -100, 100, (2, 3, 7, 6))
    for kernel, stride in [(2, 2), (3, 2), (2, 1)]:
        got = maxpool(x, kernel=kernel, stride=stride)
        ho, wo = (7 - kernel) // stride + 1, (6 - kernel) // stride + 1
        assert tuple(got.shape) == (2, 3, ho, wo)
        for n in range(2):
            for c in range(3):
                for i in range(ho):
                    for j in range(wo):
                        want = max(
                            int(x[n, c, i * stride + a, j * stride + b]) for a in range(kernel) for b in range(kernel)
                        )
                        assert int(got[n, c, i, j]) == want


def test_avgpool_is_sum_then_requant():
    gen = torch.Generator().manual_seed(4)
    x = _rand(gen, 0, 255, (2, 2, 6, 6))
    for kernel in [2, 3]:
        m, s = avg_multiplier(kernel)
        assert (m, s) == quantize_multiplier(1 / kernel**2)
        got = avgpool(x, kernel=kernel, stride=kernel, multiplier=m, shift=s, qmin=0, qmax=255)
        for n in range(2):
            for c in range(2):
                for i in range(6 // kernel):
                    for j in range(6 // kernel):
                        total = sum(
                            int(x[n, c, i * kernel + a, j * kernel + b]) for a in range(kernel) for b in range(kernel)
                        )
                        want = min(max((total * m + (1 << (s - 1))) >> s, 0), 255)
                        assert int(got[n, c, i, j]) == want
                        # and that is the rounded mean (round half up), for these small sums
                        assert want == math.floor(total / kernel**2 + 0.5)


def test_avgpool_clamps():
    x = torch.full((1, 1, 2, 2), 100, dtype=torch.int64)
    m, s = avg_multiplier(2)
    assert int(avgpool(x, kernel=2, stride=2, multiplier=m, shift=s, qmin=-8, qmax=7)[0, 0, 0, 0]) == 7


def test_relu_and_sign():
    x = torch.tensor([-3, -1, 0, 1, 5], dtype=torch.int64)
    assert relu(x).tolist() == [0, 0, 0, 1, 5]
    assert sign(x).tolist() == [-1, -1, 1, 1, 1]
    assert sign(np.array([0, -2])).tolist() == [1, -1]
    assert relu(x).dtype == sign(x).dtype == torch.int64

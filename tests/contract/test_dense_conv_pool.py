"""The dense/conv2d/pool/activation references against explicit Python-integer loops.

Average pooling's expected value is the window mean rounded half up, computed with Fraction;
the fixed-point multiplier (avg_multiplier) meets it except at one documented place
(`negative_tie`).
"""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from cdsl.contract.ref.activation import relu, sign
from cdsl.contract.ref.conv2d import conv2d
from cdsl.contract.ref.dense import dense
from cdsl.contract.ref.pool import avg_multiplier, avgpool, maxpool
from cdsl.contract.ref.requant import requantize


def _rand(gen, lo, hi, shape):
    return torch.randint(lo, hi + 1, shape, generator=gen, dtype=torch.int64)


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


def _windows_loops(x, kernel, stride):
    """((n, c, i, j), the window's values as Python ints) for every output of a pooling layer."""
    batch, chans, h, w = x.shape
    for n in range(batch):
        for c in range(chans):
            for i in range((h - kernel) // stride + 1):
                for j in range((w - kernel) // stride + 1):
                    values = [int(x[n, c, i * stride + a, j * stride + b])
                              for a in range(kernel) for b in range(kernel)]
                    yield (n, c, i, j), values


def rounded_mean(total: int, kernel: int) -> int:
    """floor(total / kernel**2 + 1/2): the window mean rounded half up."""
    return math.floor(Fraction(total, kernel * kernel) + Fraction(1, 2))


def negative_tie(total, kernel: int):
    """Where avgpool is one less than the rounded mean: kernel 6, a negative sum, the mean exactly
    halfway (sum = 36n + 18). The fixed-point 1/36 = avg_multiplier(6) is a little above 1/36, which
    pushes the negative halfway products just below the half, so floor(. + 1/2) rounds them down.
    An odd kernel has no halfway means; 2, 4, 8 are exact. Kernels 1..8 deviate nowhere else over
    16-bit windows (test_avg_multiplier_over_every_window_sum).
    Works on Python ints and numpy arrays."""
    return (kernel == 6) & (total < 0) & (total % 36 == 18)


def avgpool_value(total: int, kernel: int) -> int:
    return rounded_mean(total, kernel) - int(negative_tie(total, kernel))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_matches_loops(seed):
    gen = torch.Generator().manual_seed(seed)
    x = _rand(gen, -128, 127, (3, 7))
    w = _rand(gen, -128, 127, (5, 7))
    b = _rand(gen, -(1 << 20), 1 << 20, (5,))
    for bias in (b, None):
        got = dense(x, w, bias)
        assert got.dtype == torch.int64
        for n in range(3):
            for o in range(5):
                want = (0 if bias is None else int(b[o])) + sum(int(x[n, k]) * int(w[o, k]) for k in range(7))
                assert int(got[n, o]) == want, f"seed={seed} n={n} o={o} bias={bias is not None}"


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


@pytest.mark.parametrize("stride,padding,k,h,w", [(1, 0, 3, 5, 5), (1, 1, 3, 8, 8), (2, 1, 3, 7, 6), (2, 0, 2, 6, 6), (1, 2, 1, 3, 4)])
def test_conv2d_matches_loops(stride, padding, k, h, w):
    gen = torch.Generator().manual_seed(100 + stride * 10 + padding)
    x = _rand(gen, -128, 127, (2, 3, h, w))
    wt = _rand(gen, -8, 7, (4, 3, k, k))
    b = _rand(gen, -1000, 1000, (4,))
    for bias in (b, None):
        got = conv2d(x, wt, bias, stride=stride, padding=padding)
        for n in range(2):
            want = _conv_loops(x[n], wt, bias, stride, padding)
            assert got[n].tolist() == want, f"n={n} bias={bias is not None}"
    # no batch dimension works too
    assert conv2d(x[1], wt, b, stride=stride, padding=padding).tolist() == _conv_loops(x[1], wt, b, stride, padding)


def test_conv2d_extremes_no_wrap():
    # 16-bit operands at the extremes, zero padding: corners see 4 taps, edges 6, the centre 9.
    x = torch.full((1, 64, 3, 3), -(1 << 15), dtype=torch.int64)
    w = torch.full((2, 64, 3, 3), -(1 << 15), dtype=torch.int64)
    w[1] = (1 << 15) - 1
    got = conv2d(x, w, None, stride=1, padding=1)
    assert got.tolist()[0] == _conv_loops(x[0], w, None, 1, 1)
    assert int(got[0, 0, 1, 1]) == 64 * 9 * (1 << 30)
    assert int(got[0, 1, 0, 0]) == 64 * 4 * (-(1 << 15)) * ((1 << 15) - 1)


def test_conv2d_agrees_with_float64_torch():
    # Values exactly representable in float64: torch's float conv gives the same integers.
    gen = torch.Generator().manual_seed(7)
    x = _rand(gen, 0, 255, (4, 2, 8, 8))
    w = _rand(gen, -128, 127, (5, 2, 3, 3))
    b = _rand(gen, -5000, 5000, (5,))
    got = conv2d(x, w, b, stride=1, padding=1)
    want = torch.nn.functional.conv2d(x.double(), w.double(), b.double(), stride=1, padding=1)
    assert torch.equal(got, want.to(torch.int64))


@pytest.mark.parametrize("lo,hi", [(-100, 100), (-128, -128), (-(1 << 15), (1 << 15) - 1)])
def test_maxpool_matches_loops(lo, hi):
    gen = torch.Generator().manual_seed(3)
    x = _rand(gen, lo, hi, (2, 3, 7, 6))
    for kernel, stride in [(2, 2), (3, 2), (2, 1), (1, 1), (6, 1)]:
        got = maxpool(x, kernel=kernel, stride=stride)
        assert tuple(got.shape) == (2, 3, (7 - kernel) // stride + 1, (6 - kernel) // stride + 1)
        for idx, values in _windows_loops(x, kernel, stride):
            assert int(got[idx]) == max(values), f"kernel={kernel} stride={stride} at {idx}"


@pytest.mark.parametrize("lo,hi", [(0, 255), (-128, 127), (-(1 << 15), (1 << 15) - 1)])
@pytest.mark.parametrize("kernel", range(1, 9))
def test_avgpool_is_the_rounded_window_mean(kernel, lo, hi):
    gen = torch.Generator().manual_seed(40 + kernel)
    x = _rand(gen, lo, hi, (2, 2, 2 * kernel, 2 * kernel + 1))
    x[0, 0, :kernel, :kernel] = hi  # a window at each extreme
    x[0, 1, :kernel, :kernel] = lo
    m, s = avg_multiplier(kernel)
    for stride in (kernel, 1):
        got = avgpool(x, kernel=kernel, stride=stride, multiplier=m, shift=s, qmin=lo, qmax=hi)
        for idx, values in _windows_loops(x, kernel, stride):
            want = avgpool_value(sum(values), kernel)
            assert int(got[idx]) == want, f"kernel={kernel} stride={stride} at {idx}: window {values}"
            assert lo <= want <= hi


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("kernel", range(1, 9))
def test_avg_multiplier_over_every_window_sum(kernel, bits):
    """Every sum a window of `bits`-bit values can have (signed or unsigned), requantized with
    avg_multiplier, against the rounded mean: equal, but for the documented `negative_tie`."""
    k2 = kernel * kernel
    sums = np.arange(-(1 << (bits - 1)) * k2, ((1 << bits) - 1) * k2 + 1, dtype=np.int64)
    got = requantize(sums, *avg_multiplier(kernel), -(1 << bits), 1 << bits)
    # rounded_mean(q * k2 + r) = q + rounded_mean(r): one Fraction per residue r
    residues = np.array([rounded_mean(r, kernel) for r in range(k2)], dtype=np.int64)
    want = sums // k2 + residues[sums % k2] - negative_tie(sums, kernel)
    wrong = np.nonzero(got != want)[0]
    assert wrong.size == 0, f"kernel={kernel}: sums {sums[wrong][:5]} give {got[wrong][:5]}, want {want[wrong][:5]}"
    # every negative halfway sum of kernel 6 deviates: 2**(bits-1) of them
    assert int(negative_tie(sums, kernel).sum()) == (1 << (bits - 1) if kernel == 6 else 0)


def test_avg_multiplier_error():
    """1/k**2 in fixed point: exact for a power of two k, else within half an LSB; 1/36 rounds up."""
    for kernel in range(1, 9):
        m, s = avg_multiplier(kernel)
        error = Fraction(m, 1 << s) - Fraction(1, kernel * kernel)
        assert abs(error) <= Fraction(1, 1 << (s + 1)), f"kernel={kernel}: (M, S)=({m}, {s})"
        assert (error == 0) == (kernel in (1, 2, 4, 8)), f"kernel={kernel}: error {error}"
        assert (error > 0) == (kernel in (3, 6)), f"kernel={kernel}: error {error}"


def test_avgpool_clamps():
    x = torch.full((1, 1, 2, 2), 100, dtype=torch.int64)
    m, s = avg_multiplier(2)
    assert int(avgpool(x, kernel=2, stride=2, multiplier=m, shift=s, qmin=-8, qmax=7)[0, 0, 0, 0]) == 7
    assert int(avgpool(-x, kernel=2, stride=2, multiplier=m, shift=s, qmin=-8, qmax=7)[0, 0, 0, 0]) == -8


def test_relu_and_sign():
    x = torch.tensor([-3, -1, 0, 1, 5], dtype=torch.int64)
    assert relu(x).tolist() == [0, 0, 0, 1, 5]
    assert sign(x).tolist() == [-1, -1, 1, 1, 1]
    assert sign(np.array([0, -2])).tolist() == [1, -1]
    assert relu(x).dtype == sign(x).dtype == torch.int64

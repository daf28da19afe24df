"""The golden model on hand-built IntModels, against the independent numpy evaluation."""

import numpy as np
import pytest
import torch

from cdsl.dsl import ir
from cdsl.contract.ref.requant import quantize_multiplier
from cdsl.sw.golden import argmax_lowest, golden, predict, quantize_input
from cdsl.contract.intmodel import IntInput, IntLayer, IntModel, QType, Requant


def _rq(reals, qmin, qmax):
    pairs = [quantize_multiplier(r) for r in reals]
    return Requant(np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.int64), qmin, qmax)


def _cnn_model(rng):
    u8 = QType(8, False, 1 / 16)
    s8 = QType(8, True, 0.05)
    w1 = rng.integers(-128, 128, (4, 1, 3, 3))
    w2 = rng.integers(-8, 8, (10, 16))
    layers = (
        IntLayer("c1", ir.Conv2d(4, 3, padding=1), ("x",), ((1, 8, 8),), (4, 8, 8), (u8,), s8, w_bits=8,
                 weight=w1, w_scale=np.full(4, 0.01), bias=rng.integers(-3000, 3000, 4),
                 requant=_rq([0.0013, 0.002, 0.0009, 0.004], -128, 127)),
        IntLayer("r1", ir.ReLU(), ("c1",), ((4, 8, 8),), (4, 8, 8), (s8,), s8),
        IntLayer("p1", ir.Pool(ir.PoolKind.MAX, 2, 2), ("r1",), ((4, 8, 8),), (4, 4, 4), (s8,), s8),
        IntLayer("p2", ir.Pool(ir.PoolKind.AVG, 2, 2), ("p1",), ((4, 4, 4),), (4, 2, 2), (s8,), s8,
                 requant=_rq([0.25], -128, 127)),
        IntLayer("f", ir.Flatten(), ("p2",), ((4, 2, 2),), (16,), (s8,), s8),
        IntLayer("y", ir.Dense(10), ("f",), ((16,),), (10,), (s8,), s8, w_bits=4, weight=w2,
                 w_scale=np.full(1, 0.1), bias=rng.integers(-50, 50, 10), requant=_rq([0.11], -128, 127)),
    )
    return IntModel("cnn", (IntInput("x", (1, 8, 8), u8),), layers, ("y",))


def _mlp_model(rng):
    u8 = QType(8, False, 1 / 16)
    layers = (
        IntLayer("h", ir.Dense(12), ("x",), ((20,),), (12,), (u8,), QType(8, True, 0.1), w_bits=8,
                 weight=rng.integers(-128, 128, (12, 20)), w_scale=np.full(1, 0.01), bias=None,
                 requant=_rq([0.0071], -128, 127)),
        IntLayer("s", ir.Sign(), ("h",), ((12,),), (12,), (QType(8, True, 0.1),), QType(2, True, 1.0)),
        IntLayer("y", ir.Dense(3), ("s",), ((12,),), (3,), (QType(2, True, 1.0),), QType(8, True, 0.5), w_bits=8,
                 weight=rng.integers(-128, 128, (3, 12)), w_scale=np.full(1, 0.01), bias=rng.integers(-9, 9, 3),
                 requant=_rq([0.013, 0.02, 0.5], -128, 127)),
    )
    return IntModel("mlp", (IntInput("x", (20,), u8),), layers, ("y",), classes=3)


@pytest.mark.parametrize("seed", [0, 1])
def test_golden_equals_numpy_eval(seed, numpy_evaluator):
    rng = np.random.default_rng(seed)
    for model, shape in [(_cnn_model(rng), (5, 1, 8, 8)), (_mlp_model(rng), (5, 20))]:
        x = rng.integers(0, 256, shape)
        out, tr = golden(model, torch.from_numpy(x), trace=True)
        want = numpy_evaluator(model, x)
        assert set(tr) == {lay.name for lay in model.layers}
        for name, t in tr.items():
            assert t.dtype == torch.int64
            assert np.array_equal(t.numpy(), want[name]), f"seed={seed} model={model.name} layer={name}"
        assert torch.equal(out, tr["y"])
        # the values are not trivially saturated or zero
        assert len(np.unique(want["y"])) > 3, f"seed={seed}"


def test_quantize_input_round_half_up_and_clamp():
    model = _mlp_model(np.random.default_rng(0))
    x = torch.tensor([[0.0, 1 / 32, 3 / 32, 0.5, 15.96, 100.0, -1.0] + [0.0] * 13])
    q = quantize_input(model, x)
    assert q.dtype == torch.int64
    assert q[0, :7].tolist() == [0, 1, 2, 8, 255, 255, 0]


def test_predict_lowest_index_on_ties():
    s = torch.tensor([[1, 5, 5, 0], [7, 7, 7, 7], [-3, -1, -2, -1]])
    assert argmax_lowest(s).tolist() == [1, 0, 1]
    model = _mlp_model(np.random.default_rng(0))
    x = torch.randint(0, 256, (6, 20), generator=torch.Generator().manual_seed(0))
    assert torch.equal(predict(model, x), argmax_lowest(golden(model, x)))


def test_golden_refuses_float_and_out_of_range():
    model = _mlp_model(np.random.default_rng(0))
    with pytest.raises(TypeError):
        golden(model, torch.zeros(2, 20))
    with pytest.raises(ValueError, match="outside"):
        golden(model, torch.full((2, 20), 300))

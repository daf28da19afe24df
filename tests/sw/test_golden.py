"""The golden model on hand-built IntModels, against the independent numpy evaluation."""

import numpy as np
import pytest
import torch

from tb import random_models as M

from cdsl.contract.golden import argmax_lowest, golden, predict, quantize_input
from cdsl.contract.intmodel import IntInput, IntModel, QType


def _cnn_model(rng):
    u8 = QType(8, False, 1 / 16)
    s8 = QType(8, True, 0.05)
    w1 = rng.integers(-128, 128, (4, 1, 3, 3))
    w2 = rng.integers(-8, 8, (10, 16))
    layers = (
        M.conv2d("c1", "x", w1, in_shape=(1, 8, 8), in_type=u8, out_type=s8, padding=1,
                 bias=rng.integers(-3000, 3000, 4), rq=M.requant([0.0013, 0.002, 0.0009, 0.004], s8)),
        M.relu("r1", "c1", (4, 8, 8), s8),
        M.maxpool("p1", "r1", (4, 8, 8), s8, kernel=2),
        M.avgpool("p2", "p1", (4, 4, 4), s8, kernel=2),
        M.flatten("f", "p2", (4, 2, 2), s8),
        M.dense("y", "f", w2, in_type=s8, out_type=s8, w_bits=4, bias=rng.integers(-50, 50, 10),
                rq=M.requant([0.11], s8)),
    )
    return IntModel("cnn", (IntInput("x", (1, 8, 8), u8),), layers, ("y",))


def _mlp_model(rng):
    u8 = QType(8, False, 1 / 16)
    h_type = QType(8, True, 0.1)
    out = QType(8, True, 0.5)
    layers = (
        M.dense("h", "x", rng.integers(-128, 128, (12, 20)), in_type=u8, out_type=h_type, rq=M.requant([0.0071], h_type)),
        M.sign("s", "h", (12,), h_type),
        M.dense("y", "s", rng.integers(-128, 128, (3, 12)), in_type=QType(2, True, 1.0), out_type=out,
                bias=rng.integers(-9, 9, 3), rq=M.requant([0.013, 0.02, 0.5], out)),
    )
    return IntModel("mlp", (IntInput("x", (20,), u8),), layers, ("y",))


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


def test_sixteen_bit_layers_are_exact_beyond_int64(numpy_evaluator):
    """16-bit weights and activations over a long dot product: acc * M exceeds int64, and the golden
    model still equals the independent big-integer evaluation, element by element."""
    from tb.random_models import random_mlp

    model = random_mlp([256, 32, 10], seed=3, w_bits=16, a_bits=16)
    rng = np.random.default_rng(3)
    x = rng.integers(0, 1 << 16, size=(6, 256))
    x[0] = (1 << 16) - 1
    fc1 = model.layers[0].payload
    worst = (1 << 16) * (1 << 15) * 256 * int(fc1.requant.multiplier.max())
    assert worst >= 1 << 63  # the case the fallback exists for
    _, trace = golden(model, torch.from_numpy(x), trace=True)
    want = numpy_evaluator(model, x)
    for name, t in trace.items():
        assert np.array_equal(t.numpy(), want[name]), name

"""Acceptance of issue 3 on the digits MLP, measured (printed with -s)."""

import numpy as np
import pytest
import torch

from cdsl.dsl import parse, parse_file
from cdsl.contract.golden import golden, quantize_input
from cdsl.contract.intmodel import IntModel
from cdsl.sw.train import train

MLP_8BIT = """
model digits_mlp8 {
  input x: ufixed<8,4>[64]
  h1 = dense(x, units=64) @quant(w=8, a=8)
  r1 = relu(h1)
  h2 = dense(r1, units=32) @quant(w=8, a=8)
  r2 = relu(h2)
  y = dense(r2, units=10) @quant(w=8, a=8)
  output y
}
train {
  epochs = 30
  stage warmup(epochs=5, compress=none)
  stage qat(epochs=25)
}
"""

MLP_4BIT_24 = """
model digits_mlp4 {
  input x: ufixed<8,4>[64]
  h1 = dense(x, units=64) @quant(w=4, a=8) @prune(nm=2:4)
  r1 = relu(h1)
  h2 = dense(r1, units=32) @quant(w=4, a=8) @prune(nm=2:4)
  r2 = relu(h2)
  y = dense(r2, units=10) @quant(w=8, a=8)
  output y
}
train {
  epochs = 30
  stage warmup(epochs=5, compress=none)
  stage qat(epochs=25)
}
"""


@pytest.fixture(scope="module", params=["examples/mlp.cdsl", "8bit", "4bit-2:4"])
def trained(request):
    torch.set_num_threads(1)
    if request.param == "8bit":
        spec = parse(MLP_8BIT, "mlp8.cdsl")
    elif request.param == "4bit-2:4":
        spec = parse(MLP_4BIT_24, "mlp4.cdsl")
    else:
        spec = parse_file(request.param)
    result = train(spec)
    m = result.metrics
    print(
        f"\n[{request.param}] float {100 * m['float']['test_acc']:.2f}%  compressed {100 * m['compressed']['test_acc']:.2f}%"
        f"  golden {100 * m['golden']['golden_acc']:.2f}%  agreement {100 * m['golden']['agreement']:.2f}%"
        f"  (train {m['float']['seconds'] + m['compressed']['seconds']:.1f} s)"
    )
    return request.param, result


def test_float_accuracy_at_least_95(trained):
    name, result = trained
    assert result.metrics["float"]["test_acc"] >= 0.95, name


def test_golden_close_to_float(trained):
    name, result = trained
    m = result.metrics
    slack = {"8bit": 0.01, "4bit-2:4": 0.02, "examples/mlp.cdsl": 0.02}[name]
    assert m["golden"]["golden_acc"] >= m["float"]["test_acc"] - slack, (name, m["golden"], m["float"]["test_acc"])


def test_golden_agrees_with_fake_quant(trained):
    name, result = trained
    assert result.metrics["golden"]["agreement"] >= 0.99, name


def test_golden_equals_independent_numpy_eval(trained, numpy_evaluator):
    name, result = trained
    im = result.intmodel
    x_int = quantize_input(im, result.data.x_test)
    out, tr = golden(im, x_int, trace=True)
    want = numpy_evaluator(im, x_int.numpy())
    for lay in im.layers:
        assert np.array_equal(tr[lay.name].numpy(), want[lay.name]), (name, lay.name)
    assert np.array_equal(out.numpy(), want[im.outputs[0]])
    # and the fake-quant forward computes the same codes, layer by layer
    fake = result.net.trace_codes(result.data.x_test)
    for lay in im.layers:
        assert (fake[lay.name] != tr[lay.name]).double().mean().item() <= 1e-3, (name, lay.name)
    # the outputs use the range: not all saturated, not all equal
    assert len(np.unique(want[im.outputs[0]])) > 20


def test_pruned_weights_zero_and_nm_pattern(trained):
    name, result = trained
    im = result.intmodel
    spec = result.net.model
    pruned = [lay for lay in im.layers if spec.layer(lay.name).annotations.prune is not None]
    assert (len(pruned) > 0) == (name != "8bit")
    for lay in pruned:
        pay = lay.payload
        assert pay.mask is not None and pay.mask.dtype == np.bool_
        assert not np.any(pay.weight[~pay.mask]), lay.name
        p = spec.layer(lay.name).annotations.prune
        groups = pay.mask.reshape(pay.mask.shape[0], -1, p.m)
        assert np.all(groups.sum(axis=-1) == p.n), lay.name  # exactly n kept in every group of m
        nonzero = (pay.weight != 0).reshape(pay.weight.shape[0], -1, p.m).sum(axis=-1)
        assert np.all(nonzero <= p.n), lay.name
        # the float weights of the trained network are exactly zero there too
        w = result.net.blocks[lay.name].weight.detach().numpy().reshape(pay.weight.shape)
        assert np.all(w[~pay.mask] == 0.0)


def test_weights_fit_their_bits(trained):
    name, result = trained
    for lay in result.intmodel.layers:
        pay = lay.payload
        if lay.kind in ("dense", "conv2d"):
            lo, hi = -(1 << (pay.w_bits - 1)), (1 << (pay.w_bits - 1)) - 1
            assert pay.weight.min() >= lo and pay.weight.max() <= hi, lay.name
            assert pay.weight.dtype == np.int64
            assert pay.requant.qmin == lay.out_type.qmin and pay.requant.qmax == lay.out_type.qmax


def test_intmodel_save_load_equal(trained, tmp_path):
    name, result = trained
    folder = result.intmodel.save(tmp_path / "im")
    back = IntModel.load(folder)
    assert back == result.intmodel
    x_int = quantize_input(back, result.data.x_test[:50])
    assert torch.equal(golden(back, x_int), golden(result.intmodel, x_int))

"""@cim in training: the twin's forward equals the exported integer model, ADC steps per column or per
tile, calibration, cell noise, export, `cdsl check`'s tile count and `cdsl eval`'s CIM sections."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cdsl.cli import main
from cdsl.contract.golden import golden, quantize_input
from cdsl.contract.ref.cim_tile import CimCore
from cdsl.dsl import parse
from cdsl.dsl.analysis import cim_layout, layer_stats
from cdsl.dsl import ir
from cdsl.sw.cores.cim import STEP_FRAC, CimTwin, without_adc
from cdsl.sw.train import train

SPEC = """
model cimnet {{
  input x: ufixed<8,4>[1, 8, 8]
  c1 = conv2d(x, channels=4, kernel=3, padding=1) @quant(w=4, a=8) @cim(rows=16, cols=16, cell=2, dac={dac}, adc=4, scale={scale}, noise={noise})
  r1 = relu(c1)
  p1 = maxpool(r1, kernel=2)
  f = flatten(p1)
  h = dense(f, units=12) @quant(w=4, a=8, per=channel) @cim(rows=24, cols=8, cell=1, dac=2, adc=3, scale={scale})
  y = dense(h, units=10) @quant(w=8, a=8)
  output y
}}
train {{
  epochs = 3
  lr = 0.01
  stage warmup(epochs=1, compress=none)
  stage qat(epochs=2)
}}
"""


def spec(*, dac=1, scale="channel", noise=0):
    return parse(SPEC.format(dac=dac, scale=scale, noise=noise), "cimnet.cdsl")


@pytest.fixture(scope="module", params=["channel", "tensor"])
def trained(request):
    return request.param, train(spec(scale=request.param, dac=2), float_twin=False)


def twins(net):
    return {name: m for name, block in net.blocks.items() for m in block.modules() if isinstance(m, CimTwin)}


def test_fake_quant_equals_the_integer_model(trained):
    """Layer by layer on the whole test split, the fake-quant forward's codes are the golden model's."""
    _, res = trained
    im = res.intmodel
    _, trace = golden(im, quantize_input(im, res.data.x_test), trace=True)
    fake = res.net.trace_codes(res.data.x_test)
    for lay in im.layers:
        assert (fake[lay.name] != trace[lay.name]).double().mean().item() <= 1e-3, lay.name
    assert res.metrics["golden"]["agreement"] >= 0.995


def test_export_and_step_granularity(trained):
    scale, res = trained
    im = res.intmodel
    c1, h = im.layer("c1").payload.core, im.layer("h").payload.core
    assert isinstance(c1, CimCore) and isinstance(h, CimCore)
    assert (c1.in_bits, c1.in_signed, c1.dac, c1.step_frac) == (8, False, 2, STEP_FRAC)
    assert (h.in_bits, h.in_signed, h.cell, h.adc) == (8, False, 1, 3)
    # c1: 9 inputs, one channel per 16-row tile; h: 64 inputs on 24-row tiles (3 row tiles)
    assert c1.tile_rows == 9 and np.asarray(c1.steps).shape == (1, 4, 2)
    assert h.tile_rows == 24 and np.asarray(h.steps).shape == (3, 12, 4)
    steps = np.asarray(h.steps)
    per_tile = [steps[:, u * 2:(u + 1) * 2, :] for u in range(6)]  # 8 columns hold 2 outputs of 4 slices
    tied = all(np.all(block == block[:, :1, :1]) for block in per_tile)
    assert tied == (scale == "tensor")
    assert np.all(steps >= 1)


def test_the_adcs_change_the_result(trained):
    """With 3- and 4-bit ADCs the CIM layers are not the exact products: the ADC-free model differs."""
    _, res = trained
    im = res.intmodel
    x = quantize_input(im, res.data.x_test[:200])
    assert not torch.equal(golden(im, x), golden(without_adc(im), x))
    assert all(not isinstance(lay.payload.core, CimCore) for lay in without_adc(im).layers if hasattr(lay.payload, "core"))


def test_steps_start_at_the_largest_partial_sum():
    """Calibration: a column's first step is its largest |partial sum| over the batch / its largest code."""
    torch.manual_seed(0)
    from cdsl.sw.build import build

    net = build(spec())
    net.set_compress(None)
    net.calibrate(torch.rand(64, 1, 8, 8) * 15)
    twin = twins(net)["c1"]
    steps = twin.column_steps().detach()
    assert steps.shape == (1, 4, 2)
    # the top slice's column converts signed codes (largest magnitude 8), the lower one unsigned (15)
    assert torch.all(steps > 0) and bool(twin.adc_calibrated)
    assert torch.equal(twin.q_max, torch.tensor([15.0, 8.0]))


def test_noise_in_training_and_fixed_draws_in_evaluation():
    from cdsl.sw.build import build

    torch.manual_seed(0)
    net = build(spec(noise=0.3))
    net.set_compress(None)
    x = torch.rand(16, 1, 8, 8) * 15
    net.calibrate(x)
    net.train()
    a, b = net(x), net(x)
    assert not torch.allclose(a, b)  # a fresh draw per batch while training
    net.eval()
    clean = net(x)
    assert torch.equal(clean, net(x))
    twin = twins(net)["c1"]
    twin.noise_draw(0.3, seed=5)
    d1, d2 = net(x), net(x)
    twin.noise_draw(0.3, seed=6)
    d3 = net(x)
    twin.noise_draw(None)
    assert torch.equal(d1, d2) and not torch.equal(d1, d3) and not torch.equal(d1, clean)
    assert torch.equal(net(x), clean)


def test_cim_needs_quant_active_and_leaves_float_alone():
    from cdsl.sw.build import build

    torch.manual_seed(0)
    net = build(spec())
    x = torch.rand(4, 1, 8, 8) * 15
    net.set_compress(())
    out = net(x)
    assert not bool(twins(net)["c1"].adc_calibrated)  # float stages do not touch the ADCs
    assert out.shape == (4, 10)


def test_layout_policy_and_check_tile_count():
    """cim_layout: channel-aligned row tiles, kernel copies where the columns idle, and `cdsl check`
    counting the same tiles."""
    c = ir.Cim(rows=64, cols=64, cell=2)
    lay = cim_layout(c, w_bits=4, out_channels=16, in_channels=8, kernel=3, out_width=4)
    assert (lay.duplicate, lay.tile_rows, lay.row_tiles, lay.col_tiles) == (2, 45, 2, 1)
    lay = cim_layout(ir.Cim(rows=64, cols=32, cell=2), w_bits=4, out_channels=16, in_channels=8, kernel=3, out_width=4)
    assert (lay.duplicate, lay.tile_rows, lay.row_tiles) == (1, 63, 2)
    lay = cim_layout(ir.Cim(rows=8, cols=8, cell=2), w_bits=4, out_channels=2, in_channels=3, kernel=3, out_width=4)
    assert (lay.duplicate, lay.tile_rows, lay.row_tiles) == (1, 8, 4)  # a 3x3 window does not fit 8 rows
    lay = cim_layout(ir.Cim(rows=40, cols=24, cell=2), w_bits=4, out_channels=3, in_channels=2, kernel=3, stride=2,
                     out_width=3)
    assert (lay.duplicate, lay.tile_rows) == (3, 9)  # three copies: a 3 x 7 window per channel
    stats = {s.name: s for s in layer_stats(spec())}
    assert stats["c1"].tiles == 1 and stats["h"].tiles == 3 * 6


def test_cdsl_eval_prints_the_cim_sections(tmp_path, capsys):
    run = tmp_path / "run"
    (tmp_path / "cimnet.cdsl").write_text(SPEC.format(dac=1, scale="channel", noise=0.05))
    assert main(["train", str(tmp_path / "cimnet.cdsl"), "-o", str(run), "--epochs", "2"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--cim-draws", "3"]) == 0
    out = capsys.readouterr().out
    assert "CIM accuracy under conductance variation" in out and "trained x2" in out and "0.1" in out
    assert "same integers, exact digital products (no ADC)" in out
    assert main(["eval", str(run), "--cim-noise", "0.2", "--cim-draws", "2"]) == 0
    out = capsys.readouterr().out
    assert "--cim-noise x2" in out and "0.4" in out
    assert main(["eval", str(run), "--cim-draws", "0"]) == 2


def test_no_export_without_the_tiles_in_the_loop():
    """Trained with quant only: the ADC steps were never set, the export says so (at the annotation)."""
    text = SPEC.format(dac=1, scale="channel", noise=0).replace("stage qat(epochs=2)", "stage qat(epochs=2, compress=[quant])")
    res = train(parse(text, "cimnet.cdsl"), float_twin=False)
    assert res.intmodel is None and "no ADC steps" in res.metrics["export_error"]


@pytest.mark.parametrize("cell,dac,signed", [(1, 1, False), (4, 8, True), (8, 4, False)])
def test_twin_equals_the_core_on_large_sums(cell, dac, signed):
    """The twin's accumulator (its output over in_scale * w_scale) is CimCore.matmul of the same codes,
    also for sums past 2**20 (where 1/16 units leave float32): 8-bit weights and inputs, 1000 inputs on
    250-row tiles, 12-bit ADCs, random steps. The network runs in float64 so that its output holds
    such accumulators exactly; the twin's own arithmetic is float64 either way."""
    from cdsl.sw.build import build
    from cdsl.sw.layers import Products

    text = f"""model big {{
  input x: {'fixed' if signed else 'ufixed'}<8,0>[1000]
  y = dense(x, units=6, bias=false) @quant(w=8) @cim(rows=250, cols=48, cell={cell}, dac={dac}, adc=12)
  output y
}}"""
    torch.manual_seed(cell + dac)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        net = build(parse(text))
        block = net.blocks["y"]
        with torch.no_grad():
            block.weight[0] = block.weight[0].abs()  # one output whose products all add up
        net.set_compress(None)
        net.eval()
        grid = net.input_grid(net.model.inputs[0])
        block.wq.calibrate(block.masked_weight())
        twin = block.core
        with torch.no_grad():
            twin.adc_log_scale.copy_(torch.log(torch.rand(twin.adc_log_scale.shape) * 3000 + 1))
            twin.adc_calibrated.fill_(True)
        x = torch.randint(grid.qmin, grid.qmax + 1, (16, 1000)).double()
        x[0] = grid.qmax
        w, s_w, codes, _, _ = block.quantized(grid)
        y = twin.products(Products(module=block, x=x, in_grid=grid, w=w, w_codes=codes, w_scale=s_w, b=None))
        acc = torch.round(y / (grid.scale * s_w)).to(torch.int64)
        want = twin.core().matmul(x.to(torch.int64), codes.detach().to(torch.int64), w_bits=8, settings={})
    finally:
        torch.set_default_dtype(before)
    assert want.abs().max() > 2 ** 20
    assert torch.equal(acc, want)

"""`cdsl gen SPEC` (train first, briefly) on examples/mlp.cdsl, then the generated network.sv in Verilator
against the golden model on 100 test samples, at full precision and with the bit-serial layer at 5 bits."""

import json
from pathlib import Path

import pytest

from cdsl.cli import main
from cdsl.contract.golden import quantize_input
from cdsl.contract.intmodel import IntModel
from cdsl.hw.plan import network_cycles
from cdsl.sim.cosim import verify
from cdsl.sim.design import Design
from cdsl.sw.evaluate import load_run

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mlp.cdsl"


@pytest.mark.slow
def test_gen_spec_then_verilator_bit_exact(tmp_path):
    run, out = tmp_path / "run", tmp_path / "rtl"
    assert main(["gen", str(EXAMPLE), "-o", str(out), "--run-dir", str(run), "--epochs", "2", "--lint"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    im = IntModel.load(run / "intmodel")
    design = Design.load(out)
    assert [r.node for r in design.plan.registers] == ["h1"]  # examples/mlp.cdsl: h1 @bitserial(lanes=8)
    _, _, data = load_run(run)
    x = quantize_input(im, data.x_test[:100])
    for settings in ({}, {"h1": {"precision": 5}}):
        report = verify(im, design, x, data.y_test[:100], settings=settings, work_dir=tmp_path / f"sim{len(settings)}")
        assert report.passed, str(report.first_mismatch)
        assert list(report.run.cycles) == [network_cycles(design.plan, settings=settings)] * 100
        if settings:
            assert report.run.predicted_cycles == manifest["cycles"]["by_register"]["h1.precision"]["5"]

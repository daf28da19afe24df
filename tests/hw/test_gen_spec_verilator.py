"""`cdsl gen SPEC` (train first, briefly) on examples/mlp.cdsl, then the trained network in Verilator
against the golden model on 100 test samples, at full precision and with the bit-serial layer at 5 bits."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from amaranth.back import verilog

from cdsl.cli import main
from cdsl.hw.network import Network, precision_port
from cdsl.hw.plan import network_cycles, plan_network
from cdsl.hw.ref.bitserial_mac import truncate
from cdsl.hw.tb.prefix_ports import PrefixPorts
from cdsl.sim.harness import Harness
from cdsl.sim.runner import run_cocotb
from cdsl.sw.data import load
from cdsl.sw.golden import golden, quantize_input
from cdsl.sw.intmodel import IntModel

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mlp.cdsl"


@pytest.mark.slow
def test_gen_spec_then_verilator_bit_exact(tmp_path):
    run, out = tmp_path / "run", tmp_path / "rtl"
    assert main(["gen", str(EXAMPLE), "-o", str(out), "--run-dir", str(run), "--epochs", "2", "--lint"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    im = IntModel.load(run / "intmodel")
    plan = plan_network(im)
    assert manifest["cycles"]["cycles_per_inference"] == network_cycles(plan)
    names = [e.name for e in plan.bitserial_engines()]
    assert names == ["h1"]  # examples/mlp.cdsl: h1 @bitserial(lanes=8)
    ds = load("digits", input_shape=tuple(im.inputs[0].shape), classes=im.classes)
    x = quantize_input(im, ds.x_test[:100]).reshape(100, -1)
    samples, expected, cycles = [], [], []
    for prec in (0, 5):
        tim = im if not prec else dataclasses.replace(im, layers=tuple(
            dataclasses.replace(lay, weight=truncate(lay.weight, lay.w_bits, prec)) if lay.name in names else lay
            for lay in im.layers))
        want = golden(tim, x).tolist()
        for xi, w in zip(x.tolist(), want):
            samples.append([prec] + xi)
            expected.append(w)
            cycles.append(1 + network_cycles(plan, precisions={"h1": prec}))
    dut = PrefixPorts(dut=Network(plan=plan), ports=[precision_port("h1")], frame=plan.n_in)
    harness = Harness(dut=dut, in_depth=len(samples[0]), out_depth=len(expected[0]))
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"name": "mlp.cdsl", "samples": samples, "expected": expected, "cycles": cycles,
                                "throttle_seed": None}))
    result = run_cocotb(verilog=verilog.convert(harness, name="harness_top", emit_src=False), toplevel="harness_top",
                        test_module="cdsl.hw.tb.bulk", test_dir=tmp_path / "sim",
                        extra_env={"CDSL_HARNESS": harness.manifest_json(), "CDSL_HW_CASE": str(case)})
    assert result.passed, result.summary() + "\n" + result.log_text(tail=40)
    assert np.isfinite(result.data["cycles_per_s"])

"""Verilator runs for the hardware tests: a block through the bulk-load Harness (`run_case`, the pytest
side of `tb.bulk`), and a generated network against the golden model (`verify_design`)."""

from __future__ import annotations

import json

import torch
from cdsl.hw.verilog_text import verilog_text

from cdsl.hw.generate import generate
from cdsl.hw.plan import network_cycles
from cdsl.sim.cosim import verify
from cdsl.sim.design import Design
from cdsl.sim.harness import Harness
from cdsl.sim.runner import run_cocotb


def run_case(tmp_path, name, dut, samples, expected, cycles, *, ports=None, throttle_seed=None, throttle=False):
    """One Verilator build of `dut` in a Harness; every sample (a list of input words) must give its
    expected output words and, where not None, its cycles; with `throttle_seed`, again under random
    back-pressure (values only). Returns the testbench's results (cycles, speed)."""
    harness = Harness(dut=dut, depths={"i": max(len(s) for s in samples), "o": max(len(e) for e in expected)},
                      throttle=throttle)
    text = verilog_text(harness, name="harness_top")
    case = tmp_path / f"{name}.json"
    case.write_text(json.dumps({"name": name, "samples": samples, "expected": expected, "cycles": cycles,
                                "ports": ports, "throttle_seed": throttle_seed}))
    result = run_cocotb(verilog=text, toplevel="harness_top", test_module="tb.bulk",
                        extra_env={"CDSL_HARNESS": harness.manifest_json(), "CDSL_HW_CASE": str(case)},
                        test_dir=tmp_path / name)
    assert result.passed, result.summary() + "\n" + result.log_text(tail=40)
    print(f"{name}: {result.data}")
    return result.data


def verify_design(tmp_path, name, intmodel, inputs, setting_sets, **gen_kwargs):
    """Generate the design (as `cdsl gen` does), then verify it against golden at each settings, every
    sample bit-exact and as many cycles as the plan predicts."""
    generate(intmodel, tmp_path / name, **gen_kwargs)
    design = Design.load(tmp_path / name)
    for settings in setting_sets:
        report = verify(intmodel, design, torch.tensor(inputs), settings=settings, work_dir=tmp_path / f"{name}_sim")
        assert report.passed, f"{name} {settings}: {report.first_mismatch} (first bad layer {report.first_bad_layer})"
        assert list(report.run.cycles) == [network_cycles(design.plan, settings=settings)] * len(inputs)
    return design

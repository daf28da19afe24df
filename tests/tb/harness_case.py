"""Run a block through the bulk-load Harness in Verilator (pytest side of `tb.bulk`): samples in,
expected outputs and cycles checked by the cocotb testbench."""

from __future__ import annotations

import json

from amaranth.back import verilog

from cdsl.sim.harness import Harness
from cdsl.sim.runner import run_cocotb


def run_case(tmp_path, name, dut, samples, expected, cycles, *, ports=None, throttle_seed=None, throttle=False):
    """One Verilator build of `dut` in a Harness; every sample (a list of input words) must give its
    expected output words and, where not None, its cycles; with `throttle_seed`, again under random
    back-pressure (values only). Returns the testbench's results (cycles, speed)."""
    harness = Harness(dut=dut, depths={"i": max(len(s) for s in samples), "o": max(len(e) for e in expected)},
                      throttle=throttle)
    text = verilog.convert(harness, name="harness_top", emit_src=False)
    case = tmp_path / f"{name}.json"
    case.write_text(json.dumps({"name": name, "samples": samples, "expected": expected, "cycles": cycles,
                                "ports": ports, "throttle_seed": throttle_seed}))
    result = run_cocotb(verilog=text, toplevel="harness_top", test_module="tb.bulk",
                        extra_env={"CDSL_HARNESS": harness.manifest_json(), "CDSL_HW_CASE": str(case)},
                        test_dir=tmp_path / name)
    assert result.passed, result.summary() + "\n" + result.log_text(tail=40)
    print(f"{name}: {result.data}")
    return result.data

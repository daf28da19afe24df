"""cocotb testbench: a prepared case through the bulk-load Harness, outputs and cycles checked.

The pytest side (tests/hw/test_verilator.py) computes everything from the references and writes
a JSON case file named by `CDSL_HW_CASE`:
    {"name": str, "samples": [[word, ...], ...], "expected": [[out, ...], ...],
     "cycles": [int | null, ...], "throttle_seed": int | null}
Each sample is one harness run (so `cycles` is its latency; null = not checked). With a
throttle seed, the samples run again with the harness' LFSR back-pressure (values only).
Results (cycles, simulated cycles per second) go to `CDSL_RESULTS`.
"""

from __future__ import annotations

import json
import os
import time

import cocotb

from cdsl.sim.drivers import HarnessDriver, tb_seed, write_results
from cdsl.sim.scoreboard import Scoreboard


def _case() -> dict:
    with open(os.environ["CDSL_HW_CASE"]) as fh:
        return json.load(fh)


@cocotb.test()
async def bulk_case(dut):
    case = _case()
    seed = tb_seed()
    drv = HarnessDriver.from_env(dut)
    await drv.reset()
    n_out = len(case["expected"][0])
    wall = time.perf_counter()
    batch = await drv.run_samples(case["samples"], n_out=n_out)
    wall = time.perf_counter() - wall
    sb = Scoreboard(name=case["name"], seed=seed)
    for s, (want, got) in enumerate(zip(case["expected"], batch.outputs)):
        sb.compare(want, got, sample=s, port="o")
    sb.raise_if_failed()
    bad = [(s, want, got) for s, (want, got) in enumerate(zip(case["cycles"], batch.cycles))
           if want is not None and want != got]
    assert not bad, f"{case['name']}: cycles differ from the model (sample, predicted, simulated): {bad[:5]}"
    results = {"cycles": batch.cycles, "total_cycles": batch.total_cycles, "wall_s": wall,
               "cycles_per_s": batch.total_cycles / wall if wall > 0 else None}
    if case.get("throttle_seed") is not None:
        throttled = await drv.run_samples(case["samples"], n_out=n_out, seed=case["throttle_seed"])
        sb2 = Scoreboard(name=case["name"] + " (throttled)", seed=case["throttle_seed"])
        for s, (want, got) in enumerate(zip(case["expected"], throttled.outputs)):
            sb2.compare(want, got, sample=s, port="o")
        sb2.raise_if_failed()
        assert throttled.total_cycles > batch.total_cycles, "throttling did not stall anything"
        results["throttled_cycles"] = throttled.total_cycles
    write_results(results)

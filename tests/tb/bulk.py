"""cocotb testbench: a prepared case through the bulk-load Harness, outputs and cycles checked.

The pytest side (tests/hw/test_verilator.py) computes everything from the references and writes
a JSON case file named by `CDSL_HW_CASE`:
    {"name": str, "samples": [[word, ...], ...], "expected": [[out, ...], ...],
     "cycles": [int | null, ...], "ports": [{port: value}, ...] | null, "throttle_seed": int | null}
Each sample is one harness run (so `cycles` is its latency; null = not checked), after setting the
harness' pass-through inputs (e.g. a MAC's `precision`) to the sample's `ports`. With a throttle
seed, the samples run again with the harness' LFSR back-pressure (values only).
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


async def _run_all(drv: HarnessDriver, case: dict, *, seed: int | None) -> tuple[list, list]:
    outputs, cycles = [], []
    ports = case.get("ports") or [{}] * len(case["samples"])
    for s, (words, want) in enumerate(zip(case["samples"], case["expected"])):
        for name, value in ports[s].items():
            getattr(drv.dut, name).value = value
        run_seed = seed if not seed else (seed + s) % 0xFFFF + 1
        run = await drv.run(words, expect=len(want), seed=run_seed)
        outputs.append(run.words)
        cycles.append(run.cycles)
    return outputs, cycles


@cocotb.test()
async def bulk_case(dut):
    case = _case()
    seed = tb_seed()
    drv = HarnessDriver.from_env(dut)
    await drv.reset()
    wall = time.perf_counter()
    outputs, cycles = await _run_all(drv, case, seed=None)
    wall = time.perf_counter() - wall
    sb = Scoreboard(name=case["name"], seed=seed)
    for s, (want, got) in enumerate(zip(case["expected"], outputs)):
        sb.compare(want, got, sample=s, port="o")
    sb.raise_if_failed()
    bad = [(s, want, got) for s, (want, got) in enumerate(zip(case["cycles"], cycles))
           if want is not None and want != got]
    assert not bad, f"{case['name']}: cycles differ from the model (sample, predicted, simulated): {bad[:5]}"
    results = {"cycles": cycles, "total_cycles": sum(cycles), "wall_s": wall,
               "cycles_per_s": sum(cycles) / wall if wall > 0 else None}
    if case.get("throttle_seed") is not None:
        throttled, throttled_cycles = await _run_all(drv, case, seed=case["throttle_seed"])
        sb2 = Scoreboard(name=case["name"] + " (throttled)", seed=case["throttle_seed"])
        for s, (want, got) in enumerate(zip(case["expected"], throttled)):
            sb2.compare(want, got, sample=s, port="o")
        sb2.raise_if_failed()
        assert sum(throttled_cycles) > sum(cycles), "throttling did not stall anything"
        results["throttled_cycles"] = sum(throttled_cycles)
    write_results(results)
